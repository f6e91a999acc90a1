"""The dispatcher's intake: malformed or spoofed events are parked, never misread."""

import orjson

from helpers import drain_queue
from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import Event


async def test_bad_schema_and_spoofed_tenant_go_to_the_invalid_queue(settings, amqp_url, start_dispatcher):
    await start_dispatcher()
    broker = await Broker.connect(amqp_url, settings.retry_tiers_ms)
    try:
        good = Event(tenant_id="ten_a", event_type="user.created", payload={"id": 1})
        await broker.publish(good.to_bytes(), routing_key="ten_a.user.created")
        # Tenant ten_b publishing an event that claims to be ten_a's.
        await broker.publish(good.to_bytes(), routing_key="ten_b.user.created")
        await broker.publish(b'{"schema_version": 2}', routing_key="ten_a.x")
        await broker.publish(b"not json", routing_key="ten_a.x")
        # Straight onto the broker, past the API's header rules: refused here.
        framing = good.model_dump(mode="json") | {"headers": {"Transfer-Encoding": "chunked"}}
        await broker.publish(orjson.dumps(framing), routing_key="ten_a.user.created")
    finally:
        await broker.close()
    parked = await drain_queue(amqp_url, topology.INVALID_QUEUE, expect=4)
    bodies = sorted(m.body for m in parked)
    assert bodies == sorted([good.to_bytes(), b'{"schema_version": 2}', b"not json", orjson.dumps(framing)])
    # Parked at once by the dispatcher itself, with why and where from; no redelivery spent on them.
    reasons = {m.body: m.headers["x-hookyard-reason"] for m in parked}
    assert reasons[good.to_bytes()] == "tenant_id does not match the routing key"
    assert reasons[b"not json"].startswith("not a valid event")
    assert "Transfer-Encoding" in reasons[orjson.dumps(framing)]
    assert {m.headers["x-hookyard-origin"] for m in parked} == {topology.DISPATCH_QUEUE}
    assert not any(m.headers.get("x-delivery-count") for m in parked)
