"""Resending a message from the log: a tenant's event or a provider's webhook, to all or one endpoint."""

import asyncio
import json

from helpers import endpoint, publish


async def resend(platform, key, message_id, **body):
    """Resend once the message has reached the log (written a moment after its delivery)."""
    for _ in range(100):
        status, answer, _ = await platform.call("POST", f"/v1/messages/{message_id}/resend", token=key, json=body)
        if not (status == 404 and answer["error"]["code"] == "unknown_message"):
            return status, answer
        await asyncio.sleep(0.05)
    return status, answer


async def test_a_tenants_event_is_resent_to_every_endpoint_or_one(platform, receiver):
    key = await platform.tenant()
    first = await endpoint(platform, key, receiver.url("/a"), event_types=["user.*"])
    await endpoint(platform, key, receiver.url("/b"), event_types=["user.created"])
    await endpoint(platform, key, receiver.url("/other"), event_types=["order.*"])
    event_id = await publish(platform, key, "user.created", {"user_id": "usr_1"})
    await receiver.wait_for("/a", 1)
    await receiver.wait_for("/b", 1)

    status, answer = await resend(platform, key, event_id)
    assert status == 202 and answer["requeued"] == 2, answer
    a = await receiver.wait_for("/a", 2)
    b = await receiver.wait_for("/b", 2)
    for requests in (a, b):
        # The same message: same body, same webhook-id, freshly signed.
        assert requests[0]["body"] == requests[1]["body"]
        assert requests[0]["headers"]["webhook-id"] == requests[1]["headers"]["webhook-id"]
    assert json.loads(a[1]["body"])["data"] == {"user_id": "usr_1"}

    status, answer = await resend(platform, key, event_id, endpoint_id=first["id"])
    assert status == 202 and answer["endpoint_ids"] == [first["id"]]
    await receiver.wait_for("/a", 3)
    await asyncio.sleep(0.3)
    assert len(receiver.requests["/b"]) == 2 and "/other" not in receiver.requests

    attempts = (await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key))[1]["data"]
    for _ in range(50):
        if len(attempts) == 5:
            break
        await asyncio.sleep(0.05)
        attempts = (await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key))[1]["data"]
    assert sorted(a["endpoint_id"] == first["id"] for a in attempts) == [False, False, True, True, True]


async def test_a_providers_webhook_is_resent_byte_for_byte(platform, receiver):
    key = await platform.tenant()
    source = await platform.source(key, "none")
    await endpoint(platform, key, receiver.url("/raw"), source_ids=[source["id"]])
    raw = b'{"object": "event", "type": "ping", "n": 1}'
    status, _, _ = await platform.call(
        "POST", f"/in/{source['id']}", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 200
    [message] = await platform.wait_for_messages(key, 1)
    [original] = await receiver.wait_for("/raw", 1)
    status, answer = await resend(platform, key, message["id"])
    assert status == 202 and answer["requeued"] == 1
    again = (await receiver.wait_for("/raw", 2))[1]
    assert again["body"] == raw == original["body"]
    assert again["headers"]["webhook-id"] == original["headers"]["webhook-id"]


async def test_resend_refusals(platform, receiver):
    key = await platform.tenant()
    ep = await endpoint(platform, key, receiver.url("/x"))
    status, answer, _ = await platform.call("POST", "/v1/messages/evt_unknown/resend", token=key, json={})
    assert status == 404 and answer["error"]["code"] == "unknown_message"
    event_id = await publish(platform, key, "user.created")
    await receiver.wait_for("/x", 1)
    status, answer = await resend(platform, key, event_id, endpoint_id="ep_nope")
    assert status == 404 and answer["error"]["code"] == "unknown_endpoint"
    await platform.call("PATCH", f"/v1/endpoints/{ep['id']}", token=key, json={"active": False})
    status, answer = await resend(platform, key, event_id, endpoint_id=ep["id"])
    assert status == 409 and answer["error"]["code"] == "endpoint_disabled"
    # Another tenant cannot see the message at all.
    other = await platform.tenant("other")
    status, answer, _ = await platform.call("POST", f"/v1/messages/{event_id}/resend", token=other, json={})
    assert status == 404
