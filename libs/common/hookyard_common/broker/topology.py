"""The broker topology, declared idempotently in one place.

These names are a public contract (`docs/broker.md`): tenants publish onto
`EVENTS_EXCHANGE`, operators watch the queues. Every queue is a quorum queue
(replicated, durable, poison-message limit); declaring twice with the same
arguments is a no-op, so every service declares on start-up and on reconnect.

Each tenant's events go to a lane queue of its own (`lane_queue`, declared
with `declare_lane` by the ingest and the dispatchers), so one tenant's
backlog queues nobody else; what no lane takes, the events exchange hands to
its alternate exchange and so to the shared DISPATCH_QUEUE: nothing routed
nowhere is dropped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue
from aiormq.exceptions import ChannelPreconditionFailed

log = logging.getLogger(__name__)

# Tenants and services publish events here, routing key `<tenant_id>.<event_type>`.
EVENTS_EXCHANGE = "hookyard.events"
# The dispatcher's shared queue: events no tenant lane took (the alternate exchange's).
DISPATCH_QUEUE = "hookyard.dispatch"
# Each tenant's own dispatch queue (`<prefix><tenant_id>`), bound with `<tenant_id>.#`.
LANE_PREFIX = "hookyard.dispatch.tenant."
# Where `hookyard.events` sends what no binding matched: on to DISPATCH_QUEUE, never dropped.
UNROUTED_EXCHANGE = "hookyard.unrouted"
# Retries wait in a tier queue until the retrier's pump passes them on here (tier_pump.py).
RETRY_DUE_QUEUE = "hookyard.retry.due"
RETRY_TIER_PREFIX = "hookyard.retry.hold."
# (Older versions' tiers, `hookyard.retry.wait.<N>ms`, were TTL queues dead-lettering here; a
# broker keeps them and they drain by themselves: docs/broker.md, "Upgrading the retry tiers".)
#: A tier's delivery limit: the pump puts back a head not due within its hold (tier_pump.py),
#: and RabbitMQ 4 would otherwise drop a message put back 20 times (its default limit).
TIER_DELIVERY_LIMIT = 1_000_000
# Messages whose every attempt failed; the MongoDB record is the replayable copy.
DEAD_LETTER_QUEUE = "hookyard.dead"
# Messages no consumer could read (bad schema) or that crashed consumers too often.
INVALID_QUEUE = "hookyard.invalid"
# Notices that a tenant's endpoints changed (body: the tenant id), fanned out to
# every dispatcher and retrier replica so they stop using what they cached.
CHANGES_EXCHANGE = "hookyard.changes"

# A message redelivered this many times (consumer crashes, nacks) is parked in
# INVALID_QUEUE instead of looping forever.
DELIVERY_LIMIT = 20


#: Characters a tenant id may not contain: they would change what its lane's binding matches.
LANE_UNSAFE = re.compile(r"[.#*]")


class NoLane(ValueError):
    """The tenant id cannot name a lane (empty, or a topic wildcard or separator in it)."""


def lane_queue(tenant_id: str) -> str:
    """The tenant's lane; its binding `<tenant_id>.#` must match its events and nobody else's."""
    if not tenant_id or LANE_UNSAFE.search(tenant_id):
        raise NoLane(f"tenant id {tenant_id!r} cannot have a lane")
    return f"{LANE_PREFIX}{tenant_id}"


def carries_events(queue: str) -> bool:
    """Whether the dispatcher reads `queue`: the shared dispatch queue or a tenant's lane. Their
    messages go back through the events exchange (the dispatcher checks the routing key)."""
    return queue == DISPATCH_QUEUE or queue.startswith(LANE_PREFIX)


def way_back(origin: str, routing_key: str) -> tuple[str, str]:
    """Where a message taken off `origin` is published again (exchange, routing key): a queue
    the dispatcher reads through the events exchange, with the message's own routing key;
    any other straight back to its queue."""
    if carries_events(origin):
        return EVENTS_EXCHANGE, routing_key
    return "", origin


def tier_queue(delay_ms: int) -> str:
    return f"{RETRY_TIER_PREFIX}{delay_ms}ms"


def routing_key(tenant_id: str, event_type: str) -> str:
    return f"{tenant_id}.{event_type}"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict


def _quorum(**extra) -> dict:
    return {"x-queue-type": "quorum", **extra}


def _parks_poison() -> dict:
    return _quorum(
        **{
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": INVALID_QUEUE,
        }
    )


def queue_specs(retry_tiers_ms: tuple[int, ...]) -> list[QueueSpec]:
    specs = [
        QueueSpec(DISPATCH_QUEUE, _parks_poison()),
        QueueSpec(RETRY_DUE_QUEUE, _parks_poison()),
        QueueSpec(DEAD_LETTER_QUEUE, _quorum()),
        QueueSpec(INVALID_QUEUE, _quorum()),
    ]
    # No TTL and no dead-lettering: after its leader fails over, RabbitMQ's dead-letter worker
    # can leave a tier's expired messages where they are (docs/broker.md#a-cluster). The pump
    # consumes them instead, and a quorum queue's consumers fail over with it.
    tier_args = _quorum(**{"x-delivery-limit": TIER_DELIVERY_LIMIT})
    specs.extend(QueueSpec(tier_queue(delay_ms), tier_args) for delay_ms in sorted(set(retry_tiers_ms)))
    return specs


async def declare(connection: AbstractConnection, retry_tiers_ms: tuple[int, ...]) -> bool:
    """Declare every exchange, queue and binding. Safe to call any number of times.

    True when tenant lanes may be used: `hookyard.events` has its alternate exchange, so an
    event no lane takes still reaches DISPATCH_QUEUE. False on a broker where an older
    Hookyard declared it without one: DISPATCH_QUEUE then keeps its `#` binding and takes
    every event as before (nothing lost or doubled, not fair) until an operator recreates it.
    """
    channel = await connection.channel()
    try:
        await channel.declare_exchange(UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        fair = await _declare_events_exchange(channel)
        if not fair:
            channel = await connection.channel()  # the refusal closed the first one
        await channel.declare_exchange(CHANGES_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        for spec in queue_specs(retry_tiers_ms):
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            if spec.name == DISPATCH_QUEUE:
                await _bind_dispatch(queue, fair)
    finally:
        await channel.close()
    return fair


async def _declare_events_exchange(channel: AbstractChannel) -> bool:
    """The events exchange with its alternate exchange; False when RabbitMQ refuses that
    (declared before without it), which also closes the channel."""
    try:
        await channel.declare_exchange(
            EVENTS_EXCHANGE,
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": UNROUTED_EXCHANGE},
        )
        return True
    except ChannelPreconditionFailed:
        log.error(
            "hookyard.events was declared by an older version, without an alternate exchange: tenant lanes "
            "are off (one shared queue, bursts not fair). See docs/broker.md, 'Upgrading to tenant lanes'."
        )
        return False


async def _bind_dispatch(queue: AbstractQueue, fair: bool) -> None:
    if fair:
        await queue.bind(UNROUTED_EXCHANGE, routing_key="")
        # An older topology bound every event here too: each would arrive twice, here and in its lane.
        await queue.unbind(EVENTS_EXCHANGE, routing_key="#")
    else:
        await queue.bind(EVENTS_EXCHANGE, routing_key="#")


async def declare_lane(channel: AbstractChannel, tenant_id: str) -> AbstractQueue:
    """Declare the tenant's lane and bind it (idempotent); raises NoLane for an unsafe id."""
    queue = await channel.declare_queue(lane_queue(tenant_id), durable=True, arguments=_parks_poison())
    await queue.bind(EVENTS_EXCHANGE, routing_key=f"{tenant_id}.#")
    return queue
