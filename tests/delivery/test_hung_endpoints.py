"""Endpoints that accept a connection and never answer must not stall a replica for others.

A delivery still going on after `HOOKYARD_DELIVERY_HOLD_SECONDS` gets a watch copy
on the retry tiers and its message is acked, so hung deliveries never fill the
consumer's prefetch window; the copy makes the delivery again only if the
replica died before recording it.
"""

import asyncio
import json
import signal
import time

from helpers import start_service
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import Event

HUNG_ENDPOINTS = 16
HEALTHY_EVENTS = 50


class Tarpit:
    """A TCP server that accepts every connection, reads what it is sent, and never answers."""

    def __init__(self):
        self.connections: list[asyncio.StreamWriter] = []

    async def start(self) -> "Tarpit":
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        while await reader.read(65536):
            pass

    async def stop(self) -> None:
        self.server.close()
        for writer in self.connections:
            writer.close()


async def tenant(ingest, name: str) -> tuple[str, str]:
    key = await ingest.tenant(name)
    _, tenants, _ = await ingest.call("GET", "/v1/tenants", token="test-admin-token")
    [tenant_id] = [t["id"] for t in tenants["data"] if t["name"] == name]
    return key, tenant_id


async def endpoint(ingest, key: str, url: str, **fields) -> str:
    status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": url, **fields})
    assert status == 201, body
    return body["id"]


async def publish(broker: Broker, tenant_id: str, payload: dict, **fields) -> None:
    event = Event(tenant_id=tenant_id, event_type="order.created", payload=payload, **fields)
    await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")


async def test_hung_endpoints_of_one_tenant_do_not_delay_another_tenants_deliveries(start_platform, receiver, settings):
    # A small connection pool, so the hung deliveries would take all of it but for the
    # tenant's share (HOOKYARD_TENANT_MAX_IN_FLIGHT).
    ingest = await start_platform(delivery_max_connections=96, tenant_max_in_flight=48)
    tarpit = await Tarpit().start()
    hung_key, hung_tenant = await tenant(ingest, "tarpits")
    hung = [
        await endpoint(ingest, hung_key, f"http://127.0.0.1:{tarpit.port}/{n}", timeout_seconds=60, max_in_flight=64)
        for n in range(HUNG_ENDPOINTS)
    ]
    healthy_key, healthy_tenant = await tenant(ingest, "healthy")
    await endpoint(ingest, healthy_key, receiver.url("/healthy"))
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    sent: dict[int, float] = {}

    async def stream_to_tarpits() -> int:
        # 40 events a second, each to one hung endpoint: far more than the prefetch window (64)
        # would hold for the 60 s the deliveries hang.
        count = 0
        while len(sent) < HEALTHY_EVENTS:
            await publish(broker, hung_tenant, {"n": count}, target_endpoint_id=hung[count % HUNG_ENDPOINTS])
            count += 1
            await asyncio.sleep(0.025)
        return count

    try:
        flood = asyncio.create_task(stream_to_tarpits())
        await asyncio.sleep(3)  # the hung deliveries pile up first
        for n in range(HEALTHY_EVENTS):
            sent[n] = time.monotonic()
            await publish(broker, healthy_tenant, {"n": n})
            await asyncio.sleep(0.1)
        hung_events = await flood
        requests = await receiver.wait_for("/healthy", HEALTHY_EVENTS, timeout=30)
        held = len(tarpit.connections)  # both replicas' (dispatcher and retrier)
    finally:
        await broker.close()
        await tarpit.stop()
    latencies = sorted(r["at"] - sent[json.loads(r["body"])["data"]["n"]] for r in requests)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"{hung_events} events to hung endpoints ({held} connections held); healthy p99 {p99 * 1000:.0f} ms")
    assert held > 64, "the hung deliveries did not outnumber the prefetch window"
    assert held <= 2 * 48, "a replica gave the hung tenant more than its share of connections"
    assert p99 < 1.0, latencies


async def test_a_delivery_going_on_behind_is_made_again_if_its_replica_dies(
    settings, start_ingest, start_consumer, receiver, tmp_path
):
    """The watch copy is what keeps it: the dispatcher acked the event and is never restarted."""
    from hookyard_retrier.main import setup as retrier_setup

    fast = {
        "delivery_allowed_cidrs": ("127.0.0.0/8",),
        "endpoint_cache_seconds": 0.2,
        "delivery_hold_seconds": 0.3,
        "watch_grace_seconds": 0.5,
        "retry_tiers_ms": (200, 1_000),
    }
    ingest = await start_ingest(**fast)
    key, tenant_id = await tenant(ingest, "slow")
    # The first request is answered after 3 s, long after the dispatcher is gone; then at once.
    await endpoint(ingest, key, receiver.behave("/slow", [(200, 3.0), (200, 0)]), timeout_seconds=5)
    dispatcher = start_service("dispatcher", settings.model_copy(update=fast), tmp_path)
    await start_consumer("retrier", retrier_setup, **fast)
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        await publish(broker, tenant_id, {"n": 1})
        await receiver.wait_for("/slow", 1, timeout=20)
        await asyncio.sleep(1.0)  # past the hold: the watch copy is on the tiers, the event acked
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait()
        requests = await receiver.wait_for("/slow", 2, timeout=20)
    finally:
        await broker.close()
    assert requests[0]["headers"]["webhook-id"] == requests[1]["headers"]["webhook-id"]
    assert requests[1]["at"] - requests[0]["at"] > 5.0  # the copy waited for the attempt's timeout


def watch_copies() -> float:
    from hookyard_common.delivery.worker import HANDED_ON

    return sum(
        s.value
        for m in HANDED_ON.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["kind"] == "watch"
    )


async def test_a_delivery_finished_behind_is_not_made_twice(start_platform, receiver):
    copies = watch_copies()
    ingest = await start_platform(delivery_hold_seconds=0.3, watch_grace_seconds=0.5)
    key = await ingest.tenant()
    await endpoint(ingest, key, receiver.behave("/slow", [(200, 1.0)]), timeout_seconds=2)
    status, body, _ = await ingest.call(
        "POST", "/v1/events", token=key, json={"event_type": "order.created", "payload": {}}
    )
    assert status == 202, body
    await receiver.wait_for("/slow", 1)
    await asyncio.sleep(6)  # the watch copy was due after 0.5 + 2 + 0.5 s: it came back and was dropped
    assert watch_copies() == copies + 1
    assert len(receiver.requests["/slow"]) == 1
