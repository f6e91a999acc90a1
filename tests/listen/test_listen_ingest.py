"""The ingest's side of `hookyard listen`, spoken to with a bare WebSocket client."""

import asyncio
import base64
import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import aio_pika
import aiohttp
import pytest
from listen_frames import SECRET, next_frame, signed
from prometheus_client import REGISTRY

from hookyard_common import listen_wire
from hookyard_common.broker import topology
from hookyard_common.schemas import Event, Inbound


async def connect(ingest, key, path, **params) -> aiohttp.ClientWebSocketResponse:
    return await ingest.session.ws_connect(
        ingest.prefix + path, headers={"Authorization": f"Bearer {key}"}, params=params, heartbeat=None
    )


async def test_refusals_are_json_before_the_upgrade(ingest):
    key = await ingest.tenant("acme")
    other = await ingest.tenant("globex")
    source = await ingest.source(key, "hmac", secrets=[SECRET])
    status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": "https://example.com/h"})
    endpoint = body["id"]

    status, body, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/listen", token=key)
    assert (status, body["error"]["code"]) == (400, "websocket_required")

    for token, path, expected in [
        (None, f"/v1/sources/{source['id']}/listen", (401, "unauthorized")),
        (other, f"/v1/sources/{source['id']}/listen", (404, "unknown_source")),
        (other, f"/v1/endpoints/{endpoint}/listen", (404, "unknown_endpoint")),
        (key, "/v1/sources/src_nope/listen", (404, "unknown_source")),
    ]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ingest.session.ws_connect(ingest.prefix + path, headers=headers)
        assert refused.value.status == expected[0], path
        # The body names the problem, as for every other call.
        status, body, _ = await ingest.call("GET", path, token=token, headers=_upgrade())
        assert (status, body["error"]["code"]) == expected

    status, body, _ = await ingest.call(
        "GET", f"/v1/sources/{source['id']}/listen", token=key, params={"since": "yesterday"}, headers=_upgrade()
    )
    assert (status, body["error"]["code"]) == (400, "invalid_time")


def _upgrade() -> dict:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
    }


async def test_a_listener_sees_its_sources_requests_and_no_other_tenants(ingest):
    key = await ingest.tenant("acme")
    other = await ingest.tenant("globex")
    source = await ingest.source(key, "hmac", secrets=[SECRET])
    quiet = await ingest.source(key, "hmac", secrets=[SECRET])
    theirs = await ingest.source(other, "hmac", secrets=[SECRET])
    before = _connected()
    ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
    stranger = await connect(ingest, other, f"/v1/sources/{theirs['id']}/listen")
    hello = await next_frame(ws)
    assert hello.type == "hello" and hello.target == "source" and hello.target_id == source["id"]
    assert (await next_frame(stranger)).type == "hello"
    assert _connected() == before + 2

    raw, headers = signed({"type": "reservation_update", "id": "r-1"})
    status, accepted, _ = await ingest.call("POST", f"/in/{quiet['id']}?ignored=1", data=raw, headers=headers)
    assert status == 200
    status, accepted, _ = await ingest.call("POST", f"/in/{source['id']}?lang=es", data=raw, headers=headers)
    assert status == 200

    frame = await next_frame(ws)
    assert frame.type == "event" and frame.id == accepted["id"] and not frame.replayed
    assert frame.event_type == "reservation_update" and frame.request.method == "POST"
    assert frame.request.query == "lang=es" and frame.request.raw_body == raw
    sent = dict(frame.request.headers)
    assert sent["X-Webhook-Signature"] == headers["X-Webhook-Signature"]

    # The other tenant's listener saw nothing of it.
    with pytest.raises(asyncio.TimeoutError):
        await next_frame(stranger, timeout=1.0)
    await ws.close()
    await stranger.close()
    for _ in range(100):
        if _connected() == before:
            break
        await asyncio.sleep(0.05)
    assert _connected() == before


def _connected() -> float:
    return REGISTRY.get_sample_value("hookyard_listeners_connected", {"kind": "source"}) or 0.0


async def test_too_many_listeners_are_refused(start_ingest):
    ingest = await start_ingest(listen_max_per_tenant=1)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    first = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
    status, body, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/listen", token=key, headers=_upgrade())
    assert (status, body["error"]["code"]) == (429, "too_many_listeners")
    await first.close()
    for _ in range(100):  # the slot is free once the server saw the close
        status, _, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/listen", token=key, headers=_upgrade())
        if status != 429:
            break
        await asyncio.sleep(0.05)
    assert status == 101


async def test_a_slow_listener_is_dropped_with_the_reason(start_ingest, amqp_url):
    # Pings would end a listener that does not read before its outbox fills: keep them out of the way.
    ingest = await start_ingest(listen_buffer_bytes=256 * 1024, listen_heartbeat_seconds=120)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
    hello = await next_frame(ws)
    tenant = await _tenant_of(ingest, key)
    before = REGISTRY.get_sample_value("hookyard_listeners_dropped_total", {"reason": "too_slow"}) or 0

    # 400 events of 64 KiB, straight onto the broker, to a listener that reads none of them.
    body = "x" * 65_536
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        for _ in range(400):
            event = Event(
                tenant_id=tenant,
                event_type="bulk.item",
                source_id=source["id"],
                inbound=Inbound(
                    provider="none",
                    method="POST",
                    url="http://x/in",
                    headers=[["Content-Type", "text/plain"]],
                    body=body,
                    media_type="text/plain",
                    client_ip="127.0.0.1",
                    signature_scheme="none",
                ),
            )
            await exchange.publish(aio_pika.Message(event.to_bytes()), routing_key=f"{tenant}.bulk.item")
            if (REGISTRY.get_sample_value("hookyard_listeners_dropped_total", {"reason": "too_slow"}) or 0) > before:
                break
    for _ in range(200):
        if (REGISTRY.get_sample_value("hookyard_listeners_dropped_total", {"reason": "too_slow"}) or 0) > before:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the slow listener was not dropped")

    # What was sent before the drop still arrives, then the close frame with the reason.
    received = 0
    while True:
        message = await ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        received += 1
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    assert message.data == listen_wire.CLOSE_TOO_SLOW
    assert "too slow" in message.extra
    assert 0 < received < 400 and hello.type == "hello"


async def _tenant_of(ingest, key) -> str:
    status, body, _ = await ingest.call("GET", "/v1/tenants", token=ingest.settings.admin_token)
    assert status == 200
    return body["data"][0]["id"]


def _management(infra, path: str, method: str = "GET"):
    request = urllib.request.Request(
        infra.management_url.rstrip("/") + path,
        method=method,
        headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


async def test_listener_queues_go_with_their_listener_and_a_lost_broker_drops_them(ingest, infra, amqp_url):
    if infra.management_url is None:
        pytest.skip("needs the RabbitMQ management API")
    vhost = urllib.parse.quote(amqp_url.rsplit("/", 1)[1], safe="")
    key = await ingest.tenant()
    source = await ingest.source(key, "none")

    def listener_queues() -> list[dict]:
        queues = _management(infra, f"/api/queues/{vhost}")
        return [q for q in queues if q["name"].startswith("hookyard.listen.")]

    ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
    hello = await next_frame(ws)
    [queue] = listener_queues()
    assert queue["name"] == f"hookyard.listen.{hello.listener_id}"
    assert queue["exclusive"] and queue["auto_delete"] and not queue["durable"]
    await ws.close()
    for _ in range(100):
        if not listener_queues():
            break
        await asyncio.sleep(0.05)
    assert listener_queues() == []

    ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
    await next_frame(ws)
    # The broker closes the ingest's connection: the stream has a gap now, so the listener is told.
    for _ in range(150):  # the management API lists a connection after its next stats interval (5 s)
        connections = _management(infra, f"/api/vhosts/{vhost}/connections")
        if connections:
            break
        await asyncio.sleep(0.1)
    assert connections, "the ingest's broker connection never showed in the management API"
    for connection in connections:
        _management(infra, "/api/connections/" + urllib.parse.quote(connection["name"], safe=""), "DELETE")
    message = await ws.receive(timeout=30)
    while message.type == aiohttp.WSMsgType.TEXT:  # heartbeats
        message = await ws.receive(timeout=30)
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == listen_wire.CLOSE_BROKER_LOST, message
    assert "reconnect" in message.extra
    # Once the ingest is back on the broker, listening works again.
    for _ in range(100):
        try:
            ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen")
            break
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
            await asyncio.sleep(0.1)
    assert (await next_frame(ws)).type == "hello"
    await ws.close()


async def _close_of(ws) -> aiohttp.WSMessage:
    """The close frame the server sends, past any heartbeats."""
    message = await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=10)
    return message


async def test_deleting_a_source_or_endpoint_closes_its_listeners_with_4004(start_ingest):
    ingest = await start_ingest(source_cache_seconds=0.2, endpoint_cache_seconds=0.2)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    kept = await ingest.source(key, "none")
    status, hook, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": "https://example.com/h"})
    assert status == 201
    listeners = {
        path: await connect(ingest, key, path)
        for path in (f"/v1/sources/{source['id']}/listen", f"/v1/endpoints/{hook['id']}/listen")
    }
    staying = await connect(ingest, key, f"/v1/sources/{kept['id']}/listen")
    for ws in (*listeners.values(), staying):
        assert (await next_frame(ws)).type == "hello"

    for path, ws in listeners.items():
        status, _, _ = await ingest.call("DELETE", path.removesuffix("/listen"), token=key)
        assert status == 204
        message = await _close_of(ws)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, listen_wire.CLOSE_TARGET_GONE), path
        assert message.extra == f"the {path.split('/')[2][:-1]} was deleted", message
    # A listener of a source that is still there stays connected.
    with pytest.raises(asyncio.TimeoutError):
        await next_frame(staying, timeout=1.0)
    assert not staying.closed
    await staying.close()


async def test_a_catch_up_sends_at_most_the_oldest_thousand_and_says_it_was_cut(ingest, settings):
    from hookyard_common.records import message_log
    from hookyard_common.store.client import Store
    from hookyard_ingest.listen.routes import CATCH_UP_LIMIT

    assert CATCH_UP_LIMIT == 1_000  # the figure docs/local-development.md promises
    key = await ingest.tenant()
    tenant = await _tenant_of(ingest, key)
    source = await ingest.source(key, "none")
    start = datetime.now(UTC) - timedelta(minutes=30)

    def logged(n: int) -> dict:
        inbound = Inbound(
            provider="none",
            method="POST",
            url="http://x/in",
            headers=[("Content-Type", "application/json")],
            body=json.dumps({"n": n}),
            media_type="application/json",
            client_ip="127.0.0.1",
            signature_scheme="none",
        )
        event = Event(
            tenant_id=tenant, event_type="bulk.item", source_id=source["id"], occurred_at=at(n), inbound=inbound
        )
        return message_log.record_for(event)

    def at(n: int) -> datetime:
        return start + timedelta(milliseconds=n)

    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        # One more than the limit, inserted newest first (the catch-up sorts).
        await store[message_log.COLLECTION].insert_many([logged(n) for n in reversed(range(CATCH_UP_LIMIT + 1))])
    finally:
        await store.close()

    async def catch_up(since: datetime) -> tuple[list[int], listen_wire.CaughtUp]:
        ws = await connect(ingest, key, f"/v1/sources/{source['id']}/listen", since=since.isoformat())
        assert (await next_frame(ws)).catching_up
        sent = []
        while (frame := await next_frame(ws, timeout=20)).type == "event":
            assert frame.replayed
            sent.append(json.loads(frame.request.raw_body)["n"])
        await ws.close()
        return sent, frame

    # From the first message the window holds one more than the limit; from the second, exactly the limit.
    (cut, truncated), (whole, done) = await asyncio.gather(catch_up(at(0)), catch_up(at(1)))
    assert whole == list(range(1, CATCH_UP_LIMIT + 1)) and (done.count, done.truncated) == (CATCH_UP_LIMIT, False)
    # The oldest first; the newest one is left for `hookyard messages tail`.
    assert cut == list(range(CATCH_UP_LIMIT)) and (truncated.count, truncated.truncated) == (CATCH_UP_LIMIT, True)
