"""A bad event or endpoint is contained to itself: refused at the API, refused again when it
skipped the API, isolated in shared batch writes, and a failed attempt (never a poison message)
when its request cannot be built. Against the real broker, database and HTTP servers."""

import asyncio

import aio_pika
import orjson
import pytest

from helpers import drain_queue
from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.header_rules import header_problem
from hookyard_common.records.message_log import Unstorable, record
from hookyard_common.schemas import Event, Inbound, utcnow
from hookyard_common.store.buckets import BucketLog, Record
from hookyard_common.store.client import Store
from hookyard_common.store.isolated_writes import nesting, storable_problem

BIG = 17 * 1024 * 1024


def deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


# ---- pure rules


@pytest.mark.parametrize(
    "name, value",
    [
        ("Transfer-Encoding", "chunked"),
        ("content-length", "0"),
        ("Connection", "close"),
        ("Host", "x"),
        ("TE", "trailers"),
        ("Trailer", "x"),
        ("Upgrade", "h2c"),
        ("Keep-Alive", "1"),
        ("Proxy-Authorization", "Basic x"),
        ("proxy-connection", "close"),
        ("X-A", "a\r\nX-Injected: 1"),
        ("X-A", "a\x00"),
        ("X-A", "a\x7f"),
        ("X-A", "a\x1b"),
        ("X A", "v"),
        ("X-A:", "v"),
        ("X-A\n", "v"),
        ("X-A\r\nX-Injected", "1"),
    ],
)
def test_framing_hop_by_hop_and_control_characters_are_refused(name, value):
    assert header_problem(name, value) is not None


def test_ordinary_headers_pass():
    assert header_problem("X-API-Version", "v2\twith a tab") is None
    assert header_problem("X-Proxied-By", "me") is None, "only Proxy-* itself governs a hop"


def test_what_cannot_travel_in_a_document_is_named():
    assert nesting(deep(3)) == 3 and nesting([]) == 1 and nesting(5) == 0
    assert "deeper" in storable_problem(deep(65))
    assert "8-byte" in storable_problem({"n": 2**64})
    assert "NULL" in storable_problem({"a\x00": 1})
    assert "bytes" in storable_problem({"blob": "x" * (9 * 1024 * 1024)})
    assert storable_problem({"n": 2**63 - 1, "nested": deep(60)}) is None


# ---- batch writes against the real database


def inbound_event(tenant: str, body: str, header: str = "text/plain") -> Event:
    inbound = Inbound(
        provider="none",
        method="POST",
        url="http://x/in",
        headers=[("Content-Type", header)],
        body=body,
        media_type="text/plain",
        client_ip="127.0.0.1",
        signature_scheme="none",
    )
    return Event(tenant_id=tenant, event_type="x.y", source_id=f"src_{tenant}", inbound=inbound)


async def test_an_unstorable_message_fails_alone_in_a_shared_batch(settings):
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        good = [inbound_event("ten_a", "hello"), inbound_event("ten_c", "world")]
        huge = inbound_event("ten_b", "x" * BIG)
        not_utf8 = inbound_event("ten_b", "ok", header="\udc80")
        results = await record(store, [good[0], huge, not_utf8, good[1]])
        assert results[0] is True and results[3] is True
        assert isinstance(results[1], Unstorable) and "16 MiB" in str(results[1])
        assert isinstance(results[2], Unstorable) and "surrogates" in str(results[2])
        stored = {doc["_id"] async for doc in store["messages"].find({}, {"_id": 1})}
        assert stored == {good[0].id, good[1].id}
    finally:
        await store.close()


async def test_an_unstorable_log_record_is_kept_as_a_stub_and_spares_its_neighbours(settings):
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        log = BucketLog(store["attempts"], "attempts")
        now = utcnow()
        fine = [Record(t, now, 100, {"id": f"{t}_ok", "n": 1}) for t in ("ten_a", "ten_b", "ten_c")]
        bad = [
            Record("ten_b", now, 100, {"id": "ten_b_int", "n": 2**70}),
            Record("ten_b", now, 100, {"id": "ten_b_key", "n": {"a\x00": 1}}),
            Record("ten_b", now, BIG, {"id": "ten_b_big", "n": "x" * BIG}),
        ]
        for item in [fine[0], *bad[:2], fine[1], bad[2], fine[2]]:
            await log.add(item)
        await log.flush()
        records = {}
        async for bucket in store["attempts"].find({}):
            for one in bucket["attempts"]:
                records[one["id"]] = (bucket["tenant_id"], one)
        assert {k: v[1]["n"] for k, v in records.items() if k.endswith("_ok")} == {
            "ten_a_ok": 1,
            "ten_b_ok": 1,
            "ten_c_ok": 1,
        }
        for name in ("ten_b_int", "ten_b_key", "ten_b_big"):
            tenant, stub = records[name]
            assert tenant == "ten_b" and stub["n"] is None and stub["unstorable"].startswith("cannot be stored"), stub
    finally:
        await store.close()


# ---- the running platform


async def test_bad_headers_and_credentials_are_refused_at_the_api(ingest):
    key = await ingest.tenant()
    cases = [
        {"headers": {"Transfer-Encoding": "chunked"}},
        {"headers": {"Connection": "keep-alive"}},
        {"headers": {"Proxy-Authorization": "Basic eA=="}},
        {"headers": {"X-A": "a\x01b"}},
        {"auth": {"type": "api_key", "token": "t", "header_name": "Host"}},
        {"auth": {"type": "bearer", "token": "t\r\nX-Injected: 1"}},
        {"auth": {"type": "basic", "username": "u\x7f", "password": "p"}},
        {"auth": {"type": "basic", "username": "u", "password": "p\x00"}},
    ]
    for fields in cases:
        status, body, _ = await ingest.call(
            "POST", "/v1/endpoints", token=key, json={"url": "https://r.example/", **fields}
        )
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (fields, body)
    for headers in ({"Upgrade": "websocket"}, {"Keep-Alive": "5"}, {"X-B": "v\x1b"}):
        status, body, _ = await ingest.call(
            "POST", "/v1/events", token=key, json={"event_type": "a.b", "payload": {}, "headers": headers}
        )
        assert 400 <= status < 500 and body["error"]["code"], (headers, body)


async def test_an_unstorable_broker_event_is_parked_alone_and_others_are_delivered(platform, receiver):
    key_a, key_b = await platform.tenant("a"), await platform.tenant("b")
    _, tenants, _ = await platform.call("GET", "/v1/tenants", token="test-admin-token")
    ids = {t["name"]: t["id"] for t in tenants["data"]}
    for key, path in ((key_a, "/a"), (key_b, "/b")):
        status, _, _ = await platform.call("POST", "/v1/endpoints", token=key, json={"url": receiver.url(path)})
        assert status == 201
    bad_payloads = [{"n": 2**70}, deep(80), {"blob": "x" * (9 * 1024 * 1024)}, {"k\x00": 1}]
    broker = await Broker.connect(platform.settings.amqp_url, platform.settings.retry_tiers_ms)
    try:
        for n in range(20):
            await broker.publish(
                Event(tenant_id=ids["a"], event_type="o.c", payload={"n": n}).to_bytes(), routing_key=f"{ids['a']}.o.c"
            )
            if n < len(bad_payloads):
                # orjson refuses what BSON cannot hold; hand-built JSON carries it past the ingest.
                body = orjson.dumps({"tenant_id": ids["b"], "event_type": "o.c", "id": f"evt_bad{n}", "payload": None})
                body = body.replace(b'"payload":null', b'"payload":' + _json(bad_payloads[n]))
                await broker.publish(body, routing_key=f"{ids['b']}.o.c")
    finally:
        await broker.close()
    delivered = await receiver.wait_for("/a", 20, timeout=30)
    assert sorted(orjson.loads(r["body"])["data"]["n"] for r in delivered) == list(range(20))
    parked = await drain_queue(platform.settings.amqp_url, topology.INVALID_QUEUE, expect=len(bad_payloads))
    reasons = sorted(m.headers["x-hookyard-reason"] for m in parked)
    assert all(reason.startswith("the event") for reason in reasons), reasons
    assert not receiver.requests.get("/b"), "nothing of the refused events went out"


def _json(value) -> bytes:
    import json

    return json.dumps(value).encode()


async def test_a_request_that_cannot_be_built_is_a_failed_attempt_not_a_poison_message(platform, receiver):
    key = await platform.tenant()
    fields = {"retry_policy": {"schedule_seconds": [0.05]}}
    status, bad, _ = await platform.call(
        "POST", "/v1/endpoints", token=key, json={"url": receiver.url("/bad"), **fields}
    )
    assert status == 201
    status, stale, _ = await platform.call(
        "POST", "/v1/endpoints", token=key, json={"url": receiver.url("/stale"), **fields}
    )
    assert status == 201
    status, sibling, _ = await platform.call("POST", "/v1/endpoints", token=key, json={"url": receiver.url("/ok")})
    assert status == 201
    # Stored before the API's rules existed: a header that would smuggle a second one in,
    # and a leftover secret of another format where a `whsec_` one is expected.
    store = await Store.connect(platform.settings.mongo_uri, platform.settings.mongo_db)
    try:
        await store["endpoints"].update_one({"_id": bad["id"]}, {"$set": {"headers": {"X-A": "a\r\nX-Injected: 1"}}})
        await store["endpoints"].update_one({"_id": stale["id"]}, {"$set": {"secrets.0.secret": "whsec_%%%"}})
    finally:
        await store.close()
    await asyncio.sleep(0.5)  # past the endpoint cache
    status, body, _ = await platform.call(
        "POST", "/v1/events", token=key, json={"event_type": "o.c", "payload": {"n": 1}}
    )
    assert status == 202
    await receiver.wait_for("/ok", 1)
    for _ in range(100):
        _, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
        if len(dead.get("data", [])) == 2:
            break
        await asyncio.sleep(0.1)
    assert {(d["endpoint_id"], d["reason"]) for d in dead["data"]} == {
        (bad["id"], "request_not_built"),
        (stale["id"], "request_not_built"),
    }
    await asyncio.sleep(0.5)
    mine = [r for r in receiver.requests["/ok"] if orjson.loads(r["body"])["type"] == "o.c"]
    assert len(mine) == 1, "the sibling was not redelivered"  # (it also hears of the exhausted attempts)
    assert not receiver.requests.get("/bad") and not receiver.requests.get("/stale")
    connection = await aio_pika.connect(platform.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        invalid = await channel.declare_queue(topology.INVALID_QUEUE, passive=True)
        assert invalid.declaration_result.message_count == 0
