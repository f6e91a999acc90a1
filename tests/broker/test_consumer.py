"""Consumers ack after the work, park unusable messages, requeue failures, and drain on stop."""

import asyncio

import aio_pika

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.consumer import Consumer, Reject

TIERS = (200,)


async def _queue_depth(broker: Broker, name: str) -> int:
    channel = await broker.channel(prefetch=1)
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count
    finally:
        await channel.close()


async def _wait_for(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_ack_reject_and_requeue(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    seen: list[bytes] = []

    async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append(message.body)
        if message.body == b"poison":
            raise Reject("not a valid event")
        if message.body == b"flaky" and seen.count(b"flaky") == 1:
            raise RuntimeError("transient")

    consumer = Consumer(await broker.channel(prefetch=8), topology.DISPATCH_QUEUE, handler)
    await consumer.start()
    try:
        for body in (b"ok", b"poison", b"flaky"):
            await broker.publish(body, routing_key="ten.a")
        await _wait_for(lambda: _async(seen.count(b"flaky") == 2 and b"ok" in seen))
        assert await consumer.stop(5)
        # Everything settled: nothing left to dispatch, the poison parked in the invalid queue.
        await _wait_for(lambda: _depth_is(broker, topology.INVALID_QUEUE, 1))
        assert await _queue_depth(broker, topology.DISPATCH_QUEUE) == 0
        assert seen.count(b"ok") == 1 and seen.count(b"poison") == 1
    finally:
        await broker.close()


async def test_stop_finishes_in_flight_work_and_leaves_the_rest_queued(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    started = asyncio.Event()
    finished: list[bytes] = []

    async def slow_handler(message) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(message.body)

    consumer = Consumer(await broker.channel(prefetch=1), topology.DISPATCH_QUEUE, slow_handler)
    await consumer.start()
    try:
        for i in range(3):
            await broker.publish(f"m{i}".encode(), routing_key="ten.a")
        await asyncio.wait_for(started.wait(), 5)
        assert await consumer.stop(5), "in-flight message did not finish before the deadline"
        assert finished == [b"m0"]
        # m0 was acked; with prefetch 1, m1 and m2 were never taken and wait for the next consumer.
        await _wait_for(lambda: _depth_is(broker, topology.DISPATCH_QUEUE, 2))
    finally:
        await broker.close()


async def _async(value):
    return value


async def _depth_is(broker, queue, expected):
    return await _queue_depth(broker, queue) == expected


async def test_coalesced_acks_never_cover_a_message_still_being_handled(amqp_url):
    """Later messages finish while an earlier one hangs: they are acked singly without
    waiting for it (an unacked message holds a prefetch place), and when the consumer's
    connection dies only the hanging message comes back."""
    broker = await Broker.connect(amqp_url, TIERS)
    release = asyncio.Event()
    finished: list[bytes] = []

    async def handler(message) -> None:
        if message.body == b"m3":
            await release.wait()
        finished.append(message.body)

    consumer = Consumer(await broker.channel(prefetch=20), topology.DISPATCH_QUEUE, handler)
    await consumer.start()
    try:
        for i in range(20):
            await broker.publish(f"m{i}".encode(), routing_key="ten.a")
        await _wait_for(lambda: _async(len(finished) == 19))
        await asyncio.sleep(0.2)  # several ack rounds pass while m3 is held
        await broker.close()  # the consumer dies with m3 in hand: nothing acks it
    finally:
        release.set()

    broker = await Broker.connect(amqp_url, TIERS)
    try:
        # m0-m2 were acked with one multiple ack, m4-m19 one by one (a multiple
        # ack would have covered m3): only m3 comes back.
        await _wait_for(lambda: _depth_is(broker, topology.DISPATCH_QUEUE, 1))
        channel = await broker.channel(prefetch=50)
        queue = await channel.get_queue(topology.DISPATCH_QUEUE)
        bodies = set()
        while (message := await queue.get(fail=False)) is not None:
            bodies.add(message.body)
            await message.ack()
        assert bodies == {b"m3"}
    finally:
        await broker.close()
