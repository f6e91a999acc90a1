"""A burst from one tenant queues only that tenant (issue 13 §2), and nothing is lost on the way.

Each tenant has a lane queue of its own, consumed side by side; events no lane takes reach
the shared `hookyard.dispatch` through the events exchange's alternate exchange.
"""

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import pytest
from test_hung_endpoints import endpoint, publish, tenant

from helpers import drain_queue, http_get, start_service, wait_until
from hookyard_cli.devstack import free_ports
from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.store.client import Store

BURST = 20_000
SINGLES = 30


async def publish_burst(broker: Broker, tenant_id: str, count: int) -> None:
    """Confirmed publishes, 200 in flight at a time, as a tenant's batch job would."""
    for start in range(0, count, 200):
        await asyncio.gather(*(publish(broker, tenant_id, {"n": n}) for n in range(start, min(count, start + 200))))


def received(port: int) -> int:
    status, body = http_get(f"http://127.0.0.1:{port}/count")
    return json.loads(body)["received"] if status == 200 else 0


@pytest.fixture
def counting_sink():
    [port] = free_ports(1)
    sink = subprocess.Popen([sys.executable, str(Path(__file__).parent / "counting_sink.py"), str(port)])
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/count")[0] == 200, timeout=10, what="the sink")
    yield port
    sink.terminate()
    sink.wait()


async def test_a_burst_of_one_tenant_does_not_queue_another_tenants_events(
    start_ingest, receiver, counting_sink, settings, tmp_path
):
    fast = {"delivery_allowed_cidrs": ("127.0.0.0/8",), "endpoint_cache_seconds": 0.2}
    ingest = await start_ingest(**fast)
    burst_key, burst_tenant = await tenant(ingest, "bursty")
    await endpoint(ingest, burst_key, f"http://127.0.0.1:{counting_sink}/hook")
    quiet_key, quiet_tenant = await tenant(ingest, "quiet")
    await endpoint(ingest, quiet_key, receiver.url("/quiet"))
    # Started after both tenants exist: it finds their lanes in MongoDB at start-up.
    dispatcher = start_service("dispatcher", settings.model_copy(update=fast), tmp_path)
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    sent: dict[int, float] = {}
    try:
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{settings.dispatcher_port}/readyz")[0] == 200,
            timeout=30,
            what="the dispatcher",
        )
        started = time.monotonic()
        await publish_burst(broker, burst_tenant, BURST)
        n = 0
        while n < SINGLES or received(counting_sink) < BURST:  # singles while the burst drains
            sent[n] = time.monotonic()
            await publish(broker, quiet_tenant, {"n": n})
            n += 1
            await asyncio.sleep(0.1)
            assert time.monotonic() - started < 180, f"the burst is not drained: {received(counting_sink)}"
        drained = time.monotonic() - started
        requests = await receiver.wait_for("/quiet", len(sent), timeout=10)
    finally:
        await broker.close()
        dispatcher.terminate()
        dispatcher.wait()
    latencies = sorted(r["at"] - sent[json.loads(r["body"])["data"]["n"]] for r in requests)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(0.99 * (len(latencies) - 1))]
    print(
        f"burst of {BURST} drained in {drained:.1f} s; {len(sent)} single events p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms"
    )
    assert received(counting_sink) == BURST, "every event of the burst is delivered, none lost"
    assert p99 < 2.0, latencies


async def test_an_event_for_a_tenant_without_a_lane_reaches_the_shared_queue(amqp_url):
    broker = await Broker.connect(amqp_url, (1_000,))
    try:
        # No tenant of this id was ever created, so no lane is bound for it.
        await publish(broker, "ten_never_created", {"n": 1})
    finally:
        await broker.close()
    [message] = await drain_queue(amqp_url, topology.DISPATCH_QUEUE, expect=1)
    assert json.loads(message.body)["tenant_id"] == "ten_never_created"
    assert message.routing_key == "ten_never_created.order.created"


async def test_a_tenant_created_through_the_api_has_its_lane_before_the_call_returns(ingest, settings):
    # No dispatcher runs: only the ingest can have declared and bound the lane.
    _, tenant_id = await tenant(ingest, "new")
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        await publish(broker, tenant_id, {"n": 1})
    finally:
        await broker.close()
    [message] = await drain_queue(settings.amqp_url, topology.lane_queue(tenant_id), expect=1)
    assert json.loads(message.body)["tenant_id"] == tenant_id
    assert await drain_queue(settings.amqp_url, topology.DISPATCH_QUEUE, expect=0, timeout=0.5) == []


@pytest.mark.parametrize("tenant_id", ["a.b", "a#", "*", ""])
def test_a_tenant_id_that_would_change_its_binding_has_no_lane(tenant_id):
    with pytest.raises(topology.NoLane):
        topology.lane_queue(tenant_id)


def test_a_lane_is_named_after_its_tenant():
    assert topology.lane_queue("ten_Ab-9_x") == "hookyard.dispatch.tenant.ten_Ab-9_x"
    assert topology.carries_events(topology.lane_queue("ten_1")) and topology.carries_events(topology.DISPATCH_QUEUE)
    assert not topology.carries_events(topology.RETRY_DUE_QUEUE)


async def test_a_dispatcher_consumes_the_lane_of_a_tenant_it_was_never_told_about(start_dispatcher, settings):
    """No notice (the tenant written straight into MongoDB): the periodic resync finds it."""

    await start_dispatcher(lane_resync_seconds=0.3)
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        await store["tenants"].insert_one({"_id": "ten_unannounced", "name": "quiet", "api_key_hash": "x"})
    finally:
        await store.close()
    consumers = 0
    for _ in range(50):
        consumers = await consumer_count(settings.amqp_url, topology.lane_queue("ten_unannounced"))
        if consumers:
            break
        await asyncio.sleep(0.1)
    assert consumers == 1


async def consumer_count(amqp_url: str, queue: str) -> int:
    """How many consume `queue`; 0 when it is not declared."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        try:
            declared = await (await connection.channel()).declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return 0
        return declared.declaration_result.consumer_count
