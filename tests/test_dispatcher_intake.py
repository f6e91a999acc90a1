"""The dispatcher's intake: malformed or spoofed events are parked, never misread."""

from hookyard_common import topology
from hookyard_common.broker import Broker
from hookyard_common.schemas import Event

from helpers import drain_queue


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
    finally:
        await broker.close()
    parked = await drain_queue(amqp_url, topology.INVALID_QUEUE, expect=3)
    bodies = sorted(m.body for m in parked)
    assert bodies == sorted([good.to_bytes(), b'{"schema_version": 2}', b"not json"])
    assert {m.headers["x-death"][0]["reason"] for m in parked} == {"rejected"}
