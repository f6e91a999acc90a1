"""Erasing a payload (`DELETE /v1/messages/{id}/payload`): gone from every store, metadata kept, never sent again."""

import asyncio

import bson
from prometheus_client import REGISTRY

from helpers import endpoint, publish
from hookyard_common.delivery import attempt_log, dead_letters
from hookyard_common.records import event_log, message_log
from hookyard_common.store.client import Store

#: Stands for the personal data a data-protection request is about.
SECRET = "alice@example.org"
STORES = (message_log.COLLECTION, event_log.COLLECTION, attempt_log.COLLECTION, dead_letters.COLLECTION)


async def holding_secret(store: Store) -> list[str]:
    """The stores with a document whose BSON still holds SECRET anywhere."""
    found = []
    for name in STORES:
        async for doc in store[name].find():
            if SECRET.encode() in bson.encode(doc):
                found.append(name)
    return found


async def erase(platform, key, path):
    """DELETE once the message has reached the log (written a moment after it is taken in)."""
    for _ in range(100):
        status, body, _ = await platform.call("DELETE", path, token=key)
        if status != 404:
            return status, body
        await asyncio.sleep(0.05)
    return status, body


async def eventually(check, what: str):
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


def dropped() -> float:
    return REGISTRY.get_sample_value("hookyard_erased_deliveries_dropped_total") or 0.0


async def test_a_tenants_event_is_erased_everywhere_and_never_sent_again(platform, receiver, store):
    key, other = await platform.tenant("owner"), await platform.tenant("attacker")
    await endpoint(
        platform, key, receiver.behave("/dead", [(500, 0)]), event_types=["user.*"], retry_policy={"max_retries": 0}
    )
    later = receiver.behave("/later", [(500, 0), (200, 0)])
    await endpoint(platform, key, later, event_types=["user.*"], retry_policy={"schedule_seconds": [2.0]})
    event_id = await publish(platform, key, "user.updated", {"email": SECRET})
    await receiver.wait_for("/later", 1)

    async def settled():  # a dead letter, and both first attempts recorded
        letters = (await platform.call("GET", "/v1/dead-letters", token=key))[1]["data"]
        tried = (await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key))[1]["data"]
        return len(letters) == 1 and len(tried) == 2

    await eventually(settled, "a dead letter and two attempts")
    assert sorted(await holding_secret(store)) == ["dead_letters", "events"]
    before = dropped()

    # Another tenant's key finds nothing to erase, and erases nothing.
    status, body, _ = await platform.call("DELETE", f"/v1/events/{event_id}/payload", token=other)
    assert (status, body["error"]["code"]) == (404, "unknown_event")
    assert sorted(await holding_secret(store)) == ["dead_letters", "events"]

    status, body = await erase(platform, key, f"/v1/events/{event_id}/payload")
    assert status == 200 and body["kind"] == "event" and body["dead_letters_erased"] == 1, body
    assert await holding_secret(store) == []
    # The metadata stays.
    logged = await event_log.logged(store, (await store["tenants"].find_one({"name": "owner"}))["_id"], event_id)
    assert logged["json"] is None and logged["event_type"] == "user.updated" and logged["payload_erased_at"]
    letter = await store[dead_letters.COLLECTION].find_one({"event_id": event_id})
    assert "task" not in letter and letter["reason"] == "http_500" and letter["event_type"] == "user.updated"
    tried = (await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key))[1]["data"]
    assert sorted(a["status"] for a in tried) == [500, 500] and {a["response_body"] for a in tried} == {None}

    # Idempotent: the same time, nothing more to clear.
    status, again, _ = await platform.call("DELETE", f"/v1/messages/{event_id}/payload", token=key)
    assert status == 200 and again["payload_erased_at"] == body["payload_erased_at"]
    assert again["dead_letters_erased"] == 0

    # Nothing sends it again: resend, a dead letter's retry or a bulk replay, and the retry already queued.
    status, refused, _ = await platform.call("POST", f"/v1/messages/{event_id}/resend", token=key, json={})
    assert (status, refused["error"]["code"]) == (409, "payload_erased")
    status, refused, _ = await platform.call("POST", f"/v1/dead-letters/{letter['_id']}/retry", token=key)
    assert (status, refused["error"]["code"]) == (409, "payload_erased")
    window = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    status, replayed, _ = await platform.call("POST", "/v1/dead-letters/replay", token=key, json=window)
    assert (status, replayed["requeued"]) == (202, 0)
    status, shown, _ = await platform.call("GET", f"/v1/dead-letters/{letter['_id']}", token=key)
    assert status == 200 and shown["event"] is None and shown["can_retry"] is False and shown["payload_erased_at"]

    async def retry_dropped():
        return dropped() > before

    await eventually(retry_dropped, "the queued retry dropped")
    assert len(receiver.requests["/later"]) == 1 and len(receiver.requests["/dead"]) == 1


async def test_a_providers_webhook_is_erased_keeping_its_metadata(platform, receiver, store):
    key, other = await platform.tenant("owner"), await platform.tenant("attacker")
    source = await platform.source(key, "none")
    await endpoint(platform, key, receiver.url("/raw"), source_ids=[source["id"]])
    raw = b'{"type": "customer.updated", "email": "' + SECRET.encode() + b'"}'
    status, _, _ = await platform.call(
        "POST", f"/in/{source['id']}", data=raw, headers={"Content-Type": "application/json", "X-Who": SECRET}
    )
    assert status == 200
    [message] = await platform.wait_for_messages(key, 1)
    await receiver.wait_for("/raw", 1)
    assert await holding_secret(store) == ["messages"]

    status, _, _ = await platform.call("DELETE", f"/v1/messages/{message['id']}/payload", token=other)
    assert status == 404 and await holding_secret(store) == ["messages"]

    status, body, _ = await platform.call("DELETE", f"/v1/messages/{message['id']}/payload", token=key)
    assert status == 200 and body["kind"] == "message", body
    assert await holding_secret(store) == []  # body and headers
    status, shown, _ = await platform.call("GET", f"/v1/messages/{message['id']}", token=key)
    assert status == 200 and shown["body"] is None and shown["headers"] == []
    assert shown["payload_erased_at"] == body["payload_erased_at"]
    assert (shown["size"], shown["source_id"], shown["received_at"]) == (
        len(raw),
        source["id"],
        message["received_at"],
    )
    status, refused, _ = await platform.call("POST", f"/v1/messages/{message['id']}/resend", token=key, json={})
    assert (status, refused["error"]["code"]) == (409, "payload_erased")
    assert len(receiver.requests["/raw"]) == 1
