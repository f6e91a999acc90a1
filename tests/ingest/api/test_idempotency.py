"""Idempotency keys on `POST /v1/events` and on the broker: a repeat is answered as the first and delivered once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from aiohttp import ClientSession, web
from pymongo import AsyncMongoClient

from helpers import drain_queue, endpoint
from hookyard_cli.devstack import free_port
from hookyard_common.broker.connection import Broker
from hookyard_common.core.settings import Settings
from hookyard_common.records.idempotency_keys import INDEXES, IdempotencyKeys, settle
from hookyard_common.schemas import Event
from hookyard_common.store.client import Store
from hookyard_ingest.api.events import EventRoutes
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import json_errors

ORDER = {"event_type": "order.created", "payload": {"order": 1, "items": [{"sku": "a"}]}}


async def post(ingest, key: str, body: dict, idempotency_key: str | None = None):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return await ingest.call("POST", "/v1/events", token=key, json=body, headers=headers)


async def delivered(receiver, path: str, count: int) -> list:
    """The requests `path` received, once `count` arrived and nothing more came for a moment."""
    await receiver.wait_for(path, count)
    await asyncio.sleep(0.7)
    return receiver.requests[path]


async def test_a_retry_gets_the_first_answer_and_is_delivered_once(platform, receiver):
    key = await platform.tenant()
    await endpoint(platform, key, receiver.url("/orders"))
    status, first, headers = await post(platform, key, ORDER, "order-1")
    assert status == 202 and "Idempotent-Replayed" not in headers, first
    # The client timed out and retries: by header, by body field, by both (the same key).
    for body, header in (
        (ORDER, "order-1"),
        ({**ORDER, "idempotency_key": "order-1"}, None),
        ({**ORDER, "idempotency_key": "order-1"}, "order-1"),
    ):
        status, again, headers = await post(platform, key, body, header)
        assert (status, again, headers.get("Idempotent-Replayed")) == (202, first, "true")
    # The same key for another body names the conflict and the event holding the key.
    status, body, _ = await post(platform, key, {**ORDER, "payload": {"order": 2}}, "order-1")
    assert status == 409 and body["error"]["code"] == "idempotency_conflict", body
    assert body["error"]["event_id"] == first["id"]
    [request] = await delivered(receiver, "/orders", 1)
    assert orjson.loads(request["body"])["data"] == ORDER["payload"]


async def test_header_and_body_keys_must_agree(ingest):
    key = await ingest.tenant()
    status, body, _ = await post(ingest, key, {**ORDER, "idempotency_key": "a"}, "b")
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        400,
        "idempotency_key_mismatch",
        "Idempotency-Key",
    )
    for bad in ("", "k" * 257):
        status, body, _ = await post(ingest, key, ORDER, bad)
        assert (status, body["error"]["code"]) == (400, "invalid_idempotency_key"), bad
    status, body, _ = await post(ingest, key, {**ORDER, "idempotency_key": ""})
    assert status == 400 and body["error"]["field"] == "idempotency_key"
    # Nothing was claimed by the refusals: the key is free for its first real use.
    status, body, headers = await post(ingest, key, ORDER, "a")
    assert status == 202 and "Idempotent-Replayed" not in headers


async def test_another_tenants_same_key_is_its_own(platform, receiver):
    alice, mallory = await platform.tenant("alice"), await platform.tenant("mallory")
    await endpoint(platform, alice, receiver.url("/alice"))
    await endpoint(platform, mallory, receiver.url("/mallory"))
    status, first, _ = await post(platform, alice, ORDER, "shared-key")
    assert status == 202
    # Mallory reuses Alice's key, with her body and then with another: neither learns of,
    # collides with nor suppresses Alice's event.
    status, same, headers = await post(platform, mallory, ORDER, "shared-key")
    assert status == 202 and same["id"] != first["id"] and "Idempotent-Replayed" not in headers
    status, other, _ = await post(platform, mallory, {**ORDER, "payload": {"x": 1}}, "alice-next")
    assert status == 202
    # Alice's own later use of "alice-next" is hers alone, and her key still answers her event.
    status, mine, headers = await post(platform, alice, ORDER, "alice-next")
    assert status == 202 and mine["id"] not in (other["id"], same["id"]) and "Idempotent-Replayed" not in headers
    status, again, _ = await post(platform, alice, ORDER, "shared-key")
    assert again == first
    assert len(await delivered(receiver, "/alice", 2)) == 2
    assert len(await delivered(receiver, "/mallory", 2)) == 2


async def test_two_replicas_racing_on_one_key_publish_once(start_ingest, amqp_url):
    one = await start_ingest()
    two = await start_ingest(ingest_port=free_port())
    key = await one.tenant()
    answers = await asyncio.gather(*(post(replica, key, ORDER, "race") for replica in [one, two] * 6))
    assert {status for status, _, _ in answers} == {202}, answers
    ids = {body["id"] for _, body, _ in answers}
    assert len(ids) == 1, ids
    assert sum(headers.get("Idempotent-Replayed") == "true" for _, _, headers in answers) == 11
    published = await drain_queue(amqp_url, one.dispatch_queues(), expect=1, settle=0.5)
    assert [Event.from_bytes(m.body).id for m in published] == list(ids)


async def test_repeats_on_the_broker_are_delivered_once(start_platform, receiver, amqp_url, settings):
    ingest = await start_platform()
    key = await ingest.tenant()
    tenant = ingest.tenant_ids[0]
    await endpoint(ingest, key, receiver.url("/hooks"))
    # A key first used over HTTP, then on the broker: the broker's copy is the repeat.
    status, _, _ = await post(ingest, key, ORDER, "http-first")
    assert status == 202
    broker = await Broker.connect(amqp_url, settings.retry_tiers_ms)
    try:
        for event_key, n in (("twice", 1), ("twice", 2), ("once", 3), ("http-first", 4)):
            event = Event(tenant_id=tenant, event_type="order.created", payload={"n": n}, idempotency_key=event_key)
            await broker.publish(event.to_bytes(), routing_key=f"{tenant}.order.created")
    finally:
        await broker.close()
    datas = sorted(orjson.loads(r["body"])["data"].get("n", 0) for r in await delivered(receiver, "/hooks", 3))
    # The HTTP event (no "n"), one of the two "twice" and the "once"; not the HTTP key's repeat.
    assert datas[0] == 0 and datas[1] in (1, 2) and datas[2:] == [3], datas
    # A key first used on the broker cannot be replayed over HTTP: there is no answer to replay.
    status, body, _ = await post(ingest, key, ORDER, "once")
    assert status == 409 and body["error"]["code"] == "idempotency_conflict", body


async def test_a_key_is_free_again_after_its_window(start_platform, receiver):
    ingest = await start_platform(idempotency_window_hours=1.5 / 3600)
    key = await ingest.tenant()
    await endpoint(ingest, key, receiver.url("/hooks"))
    _, first, _ = await post(ingest, key, ORDER, "daily")
    _, again, headers = await post(ingest, key, ORDER, "daily")
    assert again == first and headers.get("Idempotent-Replayed") == "true"
    await asyncio.sleep(1.7)
    # Past the window (before any TTL sweep removed the record): a new event, delivered too.
    status, later, headers = await post(ingest, key, {**ORDER, "payload": {"other": True}}, "daily")
    assert status == 202 and later["id"] != first["id"] and "Idempotent-Replayed" not in headers
    assert len(await delivered(receiver, "/hooks", 2)) == 2


@pytest.fixture
async def store(infra, mongo_db):
    """This test's database with the idempotency_keys collection's indexes."""
    store = Store(AsyncMongoClient(infra.mongo_uri, tz_aware=True), mongo_db)
    await store.ensure_indexes([INDEXES], Settings())
    yield store
    await store.close()


async def test_a_failed_or_abandoned_claim_frees_the_key(store):
    keys = IdempotencyKeys(store, timedelta(hours=1), timedelta(seconds=0.3))
    assert await keys.claim("ten_a", "k", "fp", "evt_1", {"id": "evt_1"}) is None
    held = await keys.claim("ten_a", "k", "fp", "evt_2", {"id": "evt_2"})
    assert held is not None and (held.event_id, held.state) == ("evt_1", "pending")
    # Its publish failed: released, so the retry publishes (with whatever body: nothing was accepted).
    await keys.release("ten_a", "k", "evt_1")
    assert await keys.claim("ten_a", "k", "changed", "evt_1b", {"id": "evt_1b"}) is None
    await keys.release("ten_a", "k", "evt_1b")
    assert await keys.claim("ten_a", "k", "fp", "evt_2", {"id": "evt_2"}) is None
    # Its replica died mid-publish: past the lease the same request takes it over,
    # and the late replica learns its claim is gone; another body never does.
    await asyncio.sleep(0.4)
    held = await keys.claim("ten_a", "k", "other", "evt_x", {"id": "evt_x"})
    assert held is not None and held.event_id == "evt_2"
    assert await keys.claim("ten_a", "k", "fp", "evt_3", {"id": "evt_3"}) is None
    assert not await keys.accept("ten_a", "k", "evt_2")
    assert await keys.accept("ten_a", "k", "evt_3")
    await keys.release("ten_a", "k", "evt_3")  # accepted: a release no longer frees it
    held = await keys.claim("ten_a", "k", "fp", "evt_4", {"id": "evt_4"})
    assert held is not None and (held.event_id, held.state) == ("evt_3", "accepted")


async def test_a_failed_publish_that_arrived_after_all_is_the_one_answered(store):
    keys = IdempotencyKeys(store, timedelta(hours=1), timedelta(minutes=1))
    window = timedelta(hours=1)
    first = Event(tenant_id="ten_a", event_type="a.b", payload={}, idempotency_key="k")
    assert await keys.claim("ten_a", "k", "fp", first.id, {"id": first.id}) is None
    await keys.release("ten_a", "k", first.id)  # its confirm was lost: 503
    # ... but the broker had it: the dispatcher takes it in, and the client's retry replays it.
    assert await settle(store, [first], window) == [True]
    held = await keys.claim("ten_a", "k", "fp", "evt_retry", {"id": "evt_retry"})
    assert held is not None and (held.event_id, held.state, held.answer) == (first.id, "accepted", {"id": first.id})
    # Had the retry claimed first, the late copy would be the repeat the dispatcher drops.
    late = Event(tenant_id="ten_a", event_type="a.b", payload={}, idempotency_key="k2")
    assert await keys.claim("ten_a", "k2", "fp", late.id, {"id": late.id}) is None
    await keys.release("ten_a", "k2", late.id)
    assert await keys.claim("ten_a", "k2", "fp", "evt_retry2", {"id": "evt_retry2"}) is None
    assert await settle(store, [late], window) == [False]
    # A key whose HTTP publish failed is free for the tenant's broker event too: it is not lost.
    assert await keys.claim("ten_a", "k3", "fp", "evt_failed", {"id": "evt_failed"}) is None
    await keys.release("ten_a", "k3", "evt_failed")
    on_broker = Event(tenant_id="ten_a", event_type="a.b", payload={}, idempotency_key="k3")
    assert await settle(store, [on_broker, on_broker.model_copy(update={"id": "evt_repeat"})], window) == [True, False]


async def test_only_keyed_events_need_the_database(settings, amqp_url):
    """With MongoDB unreachable, an unkeyed event is still accepted; a keyed one is a 503."""
    broker = await Broker.connect(amqp_url, settings.retry_tiers_ms)
    dead = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=300, tz_aware=True)
    routes = EventRoutes(broker, Store(dead, "nowhere"), settings)

    @web.middleware
    async def as_tenant(request: web.Request, handler):
        request[TENANT] = {"_id": "ten_offline"}
        return await handler(request)

    app = web.Application(middlewares=[json_errors, as_tenant])
    app.router.add_post("/v1/events", routes.create)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/events"
            async with session.post(url, json=ORDER) as response:
                assert response.status == 202, await response.text()
            async with session.post(url, json=ORDER, headers={"Idempotency-Key": "k"}) as response:
                body = await response.json()
                assert response.status == 503 and body["error"]["code"] == "unavailable", body
    finally:
        await runner.cleanup()
        await broker.close()
        await dead.close()
