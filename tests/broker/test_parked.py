"""`hookyard.invalid` is visible: gauges, an admin API and a CLI to list, inspect and re-drive.

The messages are parked by the real broker's dead-lettering: an unreadable
event the dispatcher rejects, and a valid one rejected straight off its
tenant's lane (as a consumer that gave up on it would), which a re-drive
must then deliver.
"""

import asyncio
import json
import time

import aio_pika

from cli_process import cli_env, run_cli
from helpers import endpoint
from hookyard_common.broker import tier_pump, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.tiers import entering
from hookyard_common.schemas import DeliveryTask, Event

FAST = {"delivery_allowed_cidrs": ("127.0.0.0/8",), "retry_tiers_ms": (50, 200, 1_000), "endpoint_cache_seconds": 0.2}


async def park_from_lane(amqp_url: str, event: Event) -> None:
    """Publish an event as a tenant would and reject it off its lane, before any dispatcher runs."""
    broker = await Broker.connect(amqp_url, FAST["retry_tiers_ms"])
    try:
        key = topology.routing_key(event.tenant_id, event.event_type)
        await broker.publish(event.to_bytes(), routing_key=key, message_id=event.id)
        channel = await broker.channel(prefetch=1)
        queue = await channel.get_queue(topology.lane_queue(event.tenant_id))
        message = await queue.get(timeout=5)
        await message.reject(requeue=False)
    finally:
        await broker.close()


async def park_from_retry_due(amqp_url: str, task: DeliveryTask) -> None:
    """A retry that waited in a tier (passed on by the retrier's pump), then was rejected off
    hookyard.retry.due: parked from there."""
    broker = await Broker.connect(amqp_url, FAST["retry_tiers_ms"])
    try:
        tier = topology.tier_queue(50)
        await broker.publish(
            task.to_bytes(), exchange="", routing_key=tier, message_id=task.message_id, headers=entering(time.time())
        )
        await tier_pump.start(broker, (50,), prefetch=1)
        channel = await broker.channel(prefetch=1)
        queue = await channel.get_queue(topology.RETRY_DUE_QUEUE)
        message = await queue.get(timeout=5, fail=False)
        for _ in range(100):
            if message is not None:
                break
            await asyncio.sleep(0.05)
            message = await queue.get(timeout=5, fail=False)
        await message.reject(requeue=False)
    finally:
        await broker.close()


async def parked_count(ingest) -> int:
    status, body, _ = await ingest.call("GET", "/v1/admin/parked", token=ingest.settings.admin_token)
    assert status == 200, body
    return body["count"]


async def gauge(ingest, port: int, name: str) -> float:
    """A gauge as the retrier's /metrics shows it."""
    async with ingest.session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def test_parked_messages_are_counted_listed_shown_and_redriven(
    start_ingest, start_dispatcher, start_consumer, receiver, settings, tmp_path
):
    from hookyard_retrier.main import setup as retrier_setup

    ingest = await start_ingest(**FAST)
    admin = ingest.settings.admin_token
    key = await ingest.tenant()
    _, tenants, _ = await ingest.call("GET", "/v1/tenants", token=admin)
    tenant_id = tenants["data"][0]["id"]
    ep = await endpoint(ingest, key, receiver.url("/hooks"))
    event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": 1})
    await park_from_lane(settings.amqp_url, event)
    retry = DeliveryTask(endpoint_id=ep["id"], event=Event(tenant_id=tenant_id, event_type="order.paid"), attempt=2)
    await park_from_retry_due(settings.amqp_url, retry)

    await start_dispatcher(**FAST)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        garbage = aio_pika.Message(b"not json at all", message_id="garbage-1")
        await exchange.publish(garbage, routing_key=f"{tenant_id}.order.created")
    for _ in range(100):
        if await parked_count(ingest) == 3:
            break
        await asyncio.sleep(0.05)

    status, listed, _ = await ingest.call("GET", "/v1/admin/parked", token=admin)
    assert listed["count"] == 3
    rows = {row["key"]: row for row in listed["data"]}
    assert set(rows) == {event.id, "garbage-1", retry.message_id}
    assert rows["garbage-1"]["origin_queue"] == rows[event.id]["origin_queue"] == topology.lane_queue(tenant_id)
    assert rows[retry.message_id]["origin_queue"] == topology.RETRY_DUE_QUEUE
    assert rows["garbage-1"]["routing_key"] == f"{tenant_id}.order.created"
    # Parked by the broker (the helpers reject them): its reason; parked by the dispatcher: why.
    assert rows["garbage-1"]["reason"].startswith("not a valid event")
    assert rows[event.id]["reason"] == rows[retry.message_id]["reason"] == "rejected"
    assert all(row["age_seconds"] >= 0 for row in rows.values())

    status, shown, _ = await ingest.call("GET", "/v1/admin/parked/garbage-1", token=admin)
    assert (status, shown["body"], shown["body_encoding"]) == (200, "not json at all", "utf-8")
    status, _, _ = await ingest.call("GET", "/v1/admin/parked/nope", token=admin)
    assert status == 404
    status, body, _ = await ingest.call("GET", "/v1/admin/parked", token=key)
    assert status == 401 and body["error"]["code"] == "unauthorized", "a tenant's key is not the admin token"
    status, body, _ = await ingest.call("GET", "/v1/admin/parked", token=admin, params={"limit": "0"})
    assert status == 400 and body["error"]["code"] == "invalid_limit"

    # The retrier's gauges see all three, and how old the oldest is. Its one look happens as it
    # starts (the next in an hour), so it never hides messages from the looks below.
    await start_consumer("retrier", retrier_setup, invalid_scan_seconds=3600, **FAST)
    for _ in range(100):
        if await gauge(ingest, settings.retrier_port, "hookyard_invalid_messages") == 3:
            break
        await asyncio.sleep(0.05)
    assert await gauge(ingest, settings.retrier_port, "hookyard_invalid_messages") == 3
    assert await gauge(ingest, settings.retrier_port, "hookyard_invalid_oldest_age_seconds") >= 0

    # The CLI lists them and re-drives the valid one, which is then delivered.
    env = cli_env(tmp_path, ingest.base, HOOKYARD_ADMIN_TOKEN=admin)
    code, out, err = await run_cli("parked", "list", "--json", env=env)
    assert code == 0, err
    assert {row["key"] for row in json.loads(out)["data"]} == {event.id, "garbage-1", retry.message_id}
    code, out, err = await run_cli("parked", "redrive", event.id, "--json", env=env)
    assert (code, json.loads(out)) == (0, {"redriven": 1, "to": topology.lane_queue(tenant_id)}), err
    [delivered] = await receiver.wait_for("/hooks", 1)
    assert json.loads(delivered["body"])["data"] == {"n": 1}
    assert delivered["headers"]["webhook-id"]
    assert await parked_count(ingest) == 2

    # Re-driving the rest: the retry goes back to the retrier and is delivered; the unreadable
    # one is parked again, afresh. Nothing is lost either way.
    code, out, err = await run_cli("parked", "redrive", "--all", "--json", env=env)
    assert (code, json.loads(out)) == (0, {"redriven": 2}), err
    second = (await receiver.wait_for("/hooks", 2))[1]
    assert json.loads(second["body"])["type"] == "order.paid"
    assert second["headers"]["webhook-id"] == retry.message_id
    for _ in range(100):
        if await parked_count(ingest) == 1:
            break
        await asyncio.sleep(0.05)
    status, listed, _ = await ingest.call("GET", "/v1/admin/parked", token=admin)
    assert [row["key"] for row in listed["data"]] == ["garbage-1"]
    code, out, err = await run_cli("parked", "redrive", env=env)
    assert code == 2 and "KEY" in err
