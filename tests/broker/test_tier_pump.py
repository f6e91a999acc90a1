"""The retrier's tier pump on a real RabbitMQ: due on time, in order, nothing lost with a pump."""

from __future__ import annotations

import asyncio
import time

import pytest

from hookyard_common.broker import tier_pump, tiers, topology
from hookyard_common.broker.connection import Broker

TIERS = (300, 1_000)


def test_a_tier_wait_runs_from_the_stamp_and_never_beyond_the_tier():
    now = 1_000.0
    assert tiers.seconds_left(tiers.entering(now - 0.4), 1_000, now) == pytest.approx(0.6)
    assert tiers.seconds_left(tiers.entering(now - 5), 1_000, now) == 0.0  # overdue: at once
    assert tiers.seconds_left(tiers.entering(now + 3_600), 1_000, now) == 1.0  # a stamp from the future
    for unusable in (None, {}, {tiers.ENTERED_HEADER: "soon"}, {tiers.ENTERED_HEADER: True}):
        assert tiers.seconds_left(unusable, 1_000, now) == 0.0


async def _arrivals(broker: Broker, count: int, timeout: float) -> list[tuple[float, object]]:
    """(when, message) of the first `count` messages on hookyard.retry.due, acked."""
    channel = await broker.channel(prefetch=count)
    due = await channel.get_queue(topology.RETRY_DUE_QUEUE)
    got: list[tuple[float, object]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = await due.get(fail=False)
        if message is None:
            await asyncio.sleep(0.01)
            continue
        got.append((time.monotonic(), message))
        await message.ack()
    return got


async def _depth(broker: Broker, queue: str) -> int:
    channel = await broker.channel(prefetch=1)
    declared = await channel.declare_queue(queue, passive=True)
    await channel.close()
    return declared.declaration_result.message_count


async def test_a_tier_message_is_passed_on_when_its_delay_has_run_with_its_body_id_and_headers(amqp_url):
    broker = await Broker.connect(amqp_url, TIERS)
    pumps = await tier_pump.start(broker, TIERS, prefetch=4)
    try:
        sent = time.monotonic()
        # Entered 200 ms ago: 100 ms left of the 300 ms tier. A later one, stamped now, waits it all.
        stamps = (time.time() - 0.2, time.time())
        for n, entered in enumerate(stamps):
            headers = {"x-hookyard-holds": 2, **tiers.entering(entered)}
            await broker.publish(
                f"retry-{n}".encode(),
                exchange="",
                routing_key=topology.tier_queue(300),
                message_id=f"m{n}",
                headers=headers,
            )
        got = await _arrivals(broker, 2, timeout=5)
        assert [m.body for _, m in got] == [b"retry-0", b"retry-1"]
        first, second = (at - sent for at, _ in got)
        assert 0.08 <= first < 0.25, f"the first came back after {first:.3f} s, not ~0.1 s"
        assert 0.28 <= second < 0.6, f"the second came back after {second:.3f} s, not ~0.3 s"
        message = got[0][1]
        assert (message.message_id, message.headers["x-hookyard-holds"]) == ("m0", 2)
        assert message.user_id == broker.user  # still a service's message (publishers.py)
    finally:
        for pump in pumps:
            await pump.stop()
        await broker.close()


async def test_a_pump_whose_connection_closes_while_holding_messages_loses_none(amqp_url):
    """It holds its prefetch unacked; closed, they go back to the tier, and a new pump passes them on."""
    publisher = await Broker.connect(amqp_url, TIERS)
    doomed = await Broker.connect(amqp_url, TIERS)
    try:
        await tier_pump.start(doomed, (1_000,), prefetch=5)
        for n in range(12):
            await publisher.publish(
                f"{n}".encode(),
                exchange="",
                routing_key=topology.tier_queue(1_000),
                headers=tiers.entering(time.time()),
            )
        await asyncio.sleep(0.3)
        assert await _depth(publisher, topology.tier_queue(1_000)) == 7  # 5 in the pump's hands
        await doomed.close()
        assert await _depth(publisher, topology.RETRY_DUE_QUEUE) == 0
        assert await _depth(publisher, topology.tier_queue(1_000)) == 12

        await tier_pump.start(publisher, (1_000,), prefetch=5)
        got = await _arrivals(publisher, 12, timeout=10)
        assert sorted(int(m.body) for _, m in got) == list(range(12))
    finally:
        await publisher.close()


async def test_a_head_not_due_within_a_hold_is_put_back_and_still_passed_on_in_time(amqp_url, monkeypatch):
    """Held at most HOLD_MAX_SECONDS (under the broker's consumer timeout), then put back: it stays."""
    monkeypatch.setattr(tier_pump, "HOLD_MAX_SECONDS", 0.1)
    broker = await Broker.connect(amqp_url, TIERS)
    try:
        await tier_pump.start(broker, (1_000,), prefetch=1)
        sent = time.monotonic()
        await broker.publish(
            b"long", exchange="", routing_key=topology.tier_queue(1_000), headers=tiers.entering(time.time())
        )
        [(at, message)] = await _arrivals(broker, 1, timeout=5)
        assert message.body == b"long"
        assert 0.95 <= at - sent < 1.5, f"came back after {at - sent:.3f} s, not ~1 s"
    finally:
        await broker.close()
