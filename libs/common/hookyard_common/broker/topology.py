"""The broker topology, declared idempotently in one place.

These names are a public contract (`docs/broker.md`): tenants publish onto
`EVENTS_EXCHANGE`, operators watch the queues. Every queue is a quorum queue
(replicated, durable, poison-message limit); declaring twice with the same
arguments is a no-op, so every service declares on start-up and on reconnect.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel

# Tenants and services publish events here, routing key `<tenant_id>.<event_type>`.
EVENTS_EXCHANGE = "hookyard.events"
# The dispatcher's queue: every event, to be fanned out to matching endpoints.
DISPATCH_QUEUE = "hookyard.dispatch"
# Retries wait in a tier queue until its TTL expires, then dead-letter here.
RETRY_DUE_QUEUE = "hookyard.retry.due"
RETRY_TIER_PREFIX = "hookyard.retry.wait."
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
    for delay_ms in sorted(set(retry_tiers_ms)):
        # At-least-once dead-lettering (needs reject-publish overflow) so a
        # waiting retry is never dropped on its way back to the retrier.
        args = _quorum(
            **{
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": RETRY_DUE_QUEUE,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
        specs.append(QueueSpec(tier_queue(delay_ms), args))
    return specs


async def declare(channel: AbstractChannel, retry_tiers_ms: tuple[int, ...]) -> None:
    """Declare every exchange, queue and binding. Safe to call any number of times."""
    events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(CHANGES_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    for spec in queue_specs(retry_tiers_ms):
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        if spec.name == DISPATCH_QUEUE:
            await queue.bind(events, routing_key="#")
