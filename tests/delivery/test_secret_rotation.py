"""A rotated secret signs beside the new one for its grace period, then stops: deliveries read by
the Standard Webhooks library, which accepts a request when any of its signatures verifies."""

import asyncio

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from helpers import endpoint, publish

GRACE_SECONDS = 1


async def test_the_old_secret_signs_during_the_grace_and_not_after(platform, receiver):
    key = await platform.tenant()
    ep = await endpoint(platform, key, receiver.url("/rotating"), event_types=["user.*"])
    status, rotated, _ = await platform.call(
        "POST", f"/v1/endpoints/{ep['id']}/rotate-secret", token=key, json={"grace_seconds": GRACE_SECONDS}
    )
    assert status == 200
    old, new = Webhook(ep["secret"]), Webhook(rotated["secret"])

    await publish(platform, key, "user.created", {"n": 1})
    [during] = await receiver.wait_for("/rotating", 1)
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    assert old.verify(during["body"], during["headers"]) == new.verify(during["body"], during["headers"])

    await asyncio.sleep(GRACE_SECONDS + 0.2)
    await publish(platform, key, "user.created", {"n": 2})
    [_, after] = await receiver.wait_for("/rotating", 2)
    assert len(after["headers"]["webhook-signature"].split(" ")) == 1
    assert new.verify(after["body"], after["headers"])["data"] == {"n": 2}
    with pytest.raises(WebhookVerificationError):
        old.verify(after["body"], after["headers"])
    status, secret, _ = await platform.call("GET", f"/v1/endpoints/{ep['id']}/secret", token=key)
    assert secret == {"secret": rotated["secret"], "previous_secrets_valid": 0}
