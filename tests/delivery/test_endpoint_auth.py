"""An endpoint's `api_key` and `basic` credentials: on the wire as the sink reads them, and in
no stored attempt (read back through the API and straight from MongoDB)."""

import base64

import bson

from helpers import attempts_of, endpoint, publish
from hookyard_common.delivery import attempt_log

API_KEY = "ak_live_0f9e8d7c6b5a"
PASSWORD = "pa55-w0rd-kept-secret"


async def test_api_key_and_basic_auth_reach_the_sink_and_are_masked_in_attempts(platform, receiver, store):
    key = await platform.tenant()
    await endpoint(
        platform,
        key,
        receiver.url("/keyed"),
        event_types=["user.*"],
        auth={"type": "api_key", "token": API_KEY, "header_name": "X-Partner-Key"},
    )
    await endpoint(
        platform,
        key,
        receiver.url("/basic"),
        event_types=["user.*"],
        auth={"type": "basic", "username": "hookyard", "password": PASSWORD},
    )
    event_id = await publish(platform, key, "user.created", {"user_id": "usr_1"})

    [keyed] = await receiver.wait_for("/keyed", 1)
    [basic] = await receiver.wait_for("/basic", 1)
    assert keyed["headers"]["X-Partner-Key"] == API_KEY and "Authorization" not in keyed["headers"]
    scheme, encoded = basic["headers"]["Authorization"].split(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", f"hookyard:{PASSWORD}")

    attempts = await attempts_of(platform, key, event_id, 2)
    assert {a["outcome"] for a in attempts} == {"success"}
    for attempt in attempts:
        names = {name.lower() for name in attempt["request_headers"]}
        assert "x-partner-key" not in names and "authorization" not in names
        assert "webhook-signature" in names  # the rest of the request is kept
    secrets = (API_KEY.encode(), PASSWORD.encode(), base64.b64encode(f"hookyard:{PASSWORD}".encode()))
    buckets = await store[attempt_log.COLLECTION].find({}).to_list()
    assert sum(len(bucket["attempts"]) for bucket in buckets) == 2
    for bucket in buckets:
        assert not [s for s in secrets if s in bson.encode(bucket)], "a credential was stored with an attempt"
