"""The broker topology on a real RabbitMQ: idempotent, routed, and delaying retries."""

import asyncio
import time

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker

TIERS = (200, 1_000)


async def test_declaring_twice_is_harmless_and_creates_quorum_queues(amqp_url):
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        assert await topology.declare(connection, TIERS)
        assert await topology.declare(connection, TIERS)
        channel = await connection.channel()
        for spec in topology.queue_specs(TIERS):
            # A passive declare with different arguments would fail; this one must match.
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            assert queue.name == spec.name
            assert spec.arguments["x-queue-type"] == "quorum"


async def test_event_of_a_tenant_without_a_lane_routes_to_dispatch_queue(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        message = await _published_to_shared_queue(broker)
        assert message.body == b'{"x": 1}'
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    finally:
        await broker.close()


async def _published_to_shared_queue(broker: Broker):
    """Publish an event of tenant ten_1 and take it (acked) off hookyard.dispatch."""
    await broker.publish(b'{"x": 1}', routing_key=topology.routing_key("ten_1", "user.created"))
    channel = await broker.channel(prefetch=1)
    message = await _get(await channel.get_queue(topology.DISPATCH_QUEUE))
    assert message.routing_key == "ten_1.user.created"
    await message.ack()
    return message


async def test_unroutable_publish_raises_instead_of_vanishing(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        with pytest.raises(DeliveryError):
            await broker.publish(b"{}", exchange="", routing_key="no.such.queue")
    finally:
        await broker.close()


async def test_a_retry_tier_keeps_no_time_of_its_own(amqp_url):
    """No TTL and no dead-lettering (docs/broker.md#a-cluster): a tier nobody pumps keeps its message."""
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        await broker.publish(b"retry-me", exchange="", routing_key=topology.tier_queue(200))
        await asyncio.sleep(0.5)
        channel = await broker.channel(prefetch=1)
        tier = await channel.declare_queue(topology.tier_queue(200), passive=True)
        due = await channel.declare_queue(topology.RETRY_DUE_QUEUE, passive=True)
        assert (tier.declaration_result.message_count, due.declaration_result.message_count) == (1, 0)
    finally:
        await broker.close()


async def _get(queue, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing arrived on {queue.name} within {timeout}s")


async def test_an_events_exchange_declared_without_an_alternate_exchange_turns_lanes_off(amqp_url):
    """An older Hookyard's exchange: RabbitMQ refuses the new argument. The shared queue then keeps
    its `#` binding and takes every event (none lost or doubled), and no lane is declared."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(topology.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        assert broker.lanes is False
        assert await broker.declare_lane("ten_1") is False
        await _published_to_shared_queue(broker)
    finally:
        await broker.close()


async def test_a_lanes_event_is_not_doubled_by_an_old_catch_all_binding(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        channel = await broker.channel(prefetch=1)
        shared = await channel.get_queue(topology.DISPATCH_QUEUE)
        await shared.bind(topology.EVENTS_EXCHANGE, routing_key="#")  # as the old topology had it
        await (await Broker.connect(amqp_url, TIERS)).close()  # a service starting removes it
        assert await broker.declare_lane("ten_1")
        await broker.publish(b'{"x": 1}', routing_key=topology.routing_key("ten_1", "user.created"))
        lane = await channel.get_queue(topology.lane_queue("ten_1"))
        await (await _get(lane)).ack()
        await asyncio.sleep(0.2)
        assert await shared.get(fail=False) is None
    finally:
        await broker.close()
