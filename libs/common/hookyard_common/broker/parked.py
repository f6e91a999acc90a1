"""Parked messages: what `hookyard.invalid` holds, looked at and sent back without losing any.

Nothing consumes the invalid queue, so what lands there (a message a
consumer rejected, or one that crashed consumers `DELIVERY_LIMIT` times)
is invisible unless someone looks. Looking is a `basic.get` of each
message, unacknowledged, then a `nack` with requeue of all of them: nothing
leaves the queue unless it is re-driven, and a re-driven message is acked
here only once the broker confirmed its copy in the queue it came from.

A quorum queue puts a returned message at its tail, so a look that reads
the whole queue (up to `MAX_SCAN`) leaves it in its order; a longer queue
rotates, which costs nothing but the order of an unordered heap. While one
look holds the messages, another (a replica's gauges, an operator's
listing) does not see them: a re-drive that finds nothing looks once more. Where a
message came from and when it was parked are the broker's own `x-death`
record; a re-driven copy carries none, so a message parked again is dated
afresh. A message is named by its `message_id`, or by a hash of its body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pamqp.common import FieldValue
from prometheus_client import Gauge

from hookyard_common.broker import outages, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import utcnow

log = logging.getLogger(__name__)

PARKED = Gauge(
    "hookyard_invalid_messages",
    "Messages parked in hookyard.invalid (rejected as unreadable, or past the redelivery limit).",
    multiprocess_mode="max",
)
OLDEST_PARKED = Gauge(
    "hookyard_invalid_oldest_age_seconds",
    "Age of the oldest message parked in hookyard.invalid (0 when it is empty).",
    multiprocess_mode="max",
)

#: Most messages one look reads; the count is exact whatever the length.
MAX_SCAN = 1_000


#: Where re-drivable messages come from, in words.
REDRIVABLE_QUEUES = f"{topology.DISPATCH_QUEUE}, a tenant lane or {topology.RETRY_DUE_QUEUE}"


def redrivable(origin: str | None) -> bool:
    """Whether a parked message may be sent back to `origin`: where Hookyard's consumers read."""
    return origin is not None and (origin == topology.RETRY_DUE_QUEUE or topology.carries_events(origin))


#: Pause before a re-drive that found nothing looks again.
RELOOK_SECONDS = 0.5


@dataclass(frozen=True)
class Parked:
    key: str
    message_id: str | None
    routing_key: str | None
    origin: str | None
    reason: str | None
    parked_at: datetime | None
    headers: dict
    body: bytes
    # The broker user that published it, as RabbitMQ checked it (None when not given).
    user_id: str | None = None
    # Who published the original a consumer parked (outages.PUBLISHER_HEADER): shown only.
    publisher: str | None = None

    def summary(self, now: datetime) -> dict:
        return {
            "key": self.key,
            "message_id": self.message_id,
            "routing_key": self.routing_key,
            "origin_queue": self.origin,
            "reason": self.reason,
            "publisher": self.publisher or self.user_id,
            "parked_at": self.parked_at.isoformat() if self.parked_at else None,
            "age_seconds": round((now - self.parked_at).total_seconds(), 3) if self.parked_at else None,
            "body_bytes": len(self.body),
        }

    def detail(self, now: datetime) -> dict:
        try:
            body, encoding = self.body.decode(), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.body).decode(), "base64"
        headers = {k: v for k, v in self.headers.items() if k != "x-death"}
        return {**self.summary(now), "headers": _plain(headers), "body": body, "body_encoding": encoding}


def describe(message: AbstractIncomingMessage) -> Parked:
    headers = dict(message.headers or {})
    last = _last_death(headers)
    return Parked(
        key=message.message_id or "sha256-" + hashlib.sha256(message.body).hexdigest()[:24],
        message_id=message.message_id,
        # Dead-lettering replaced the routing key; the one it had is in the broker's record.
        # A consumer that parked it itself (outages.Triage) said where from in its headers.
        routing_key=_text(
            headers.get(outages.ROUTING_KEY_HEADER) or (last.get("routing-keys") or [message.routing_key])[0]
        ),
        origin=_text(headers.get(outages.ORIGIN_HEADER) or last.get("queue")),
        # A consumer may say why (x-hookyard-reason); the broker always does (rejected, delivery_limit).
        reason=_text(headers.get("x-hookyard-reason") or last.get("reason")),
        parked_at=outages.parked_at(headers) or last.get("time"),
        headers=headers,
        body=message.body,
        user_id=message.user_id,
        publisher=_text(headers.get(outages.PUBLISHER_HEADER)) or None,
    )


async def queue_length(channel: AbstractChannel) -> int:
    declared = await channel.declare_queue(topology.INVALID_QUEUE, passive=True)
    return declared.declaration_result.message_count or 0


async def look(broker: Broker, limit: int = MAX_SCAN) -> tuple[int, list[Parked]]:
    """How many messages are parked, and the first `limit` of them, all left in the queue."""
    async with broker.connection.channel() as channel:
        count = await queue_length(channel)
        held = await _take(channel, min(limit, MAX_SCAN))
        await _give_back(held)
    return max(count, len(held)), [describe(m) for m in held]


async def watch(broker: Broker, period_seconds: float) -> None:
    """Keep the invalid queue's gauges current, one look every `period_seconds`."""
    while True:
        try:
            count, parked = await look(broker)
        except Exception:  # the broker is away: the gauges keep their last values
            log.warning("could not look at the invalid queue", exc_info=True)
        else:
            now = utcnow()
            PARKED.set(count)
            ages = [(now - p.parked_at).total_seconds() for p in parked if p.parked_at is not None]
            OLDEST_PARKED.set(max(ages, default=0.0))
        await asyncio.sleep(period_seconds)


async def redrive(broker: Broker, key: str | None) -> list[Parked]:
    """Send the message named `key` (every re-drivable one when None) back where it came from.

    Each copy is published with a confirm before its parked original is acked.
    """
    sent = await _redrive_once(broker, key)
    if not sent:  # another look may have held it for a moment
        await asyncio.sleep(RELOOK_SECONDS)
        sent = await _redrive_once(broker, key)
    return sent


async def _redrive_once(broker: Broker, key: str | None) -> list[Parked]:
    sent: list[Parked] = []
    async with broker.connection.channel() as channel:
        held = await _take(channel, MAX_SCAN)
        keep = []
        for message in held:
            parked = describe(message)
            if (key is None or parked.key == key) and redrivable(parked.origin):
                await _send_back(broker, parked)
                await message.ack()
                sent.append(parked)
            else:
                keep.append(message)
        await _give_back(keep)
    return sent


async def _send_back(broker: Broker, parked: Parked) -> None:
    if parked.origin is None:  # _redrive_once sends back only what came from a REDRIVABLE queue
        raise ValueError(f"parked message {parked.key} names no queue to go back to")
    exchange, routing_key = topology.way_back(parked.origin, parked.routing_key or "")
    # A tenant's message goes back as nobody's, never under the re-driving service's name.
    await broker.publish_copy(
        parked.body,
        user_id=parked.user_id,
        exchange=exchange,
        routing_key=routing_key,
        message_id=parked.message_id,
        headers=outages.carried(parked.headers),
    )


async def _take(channel: AbstractChannel, limit: int) -> list[AbstractIncomingMessage]:
    queue = await channel.get_queue(topology.INVALID_QUEUE, ensure=False)
    held: list[AbstractIncomingMessage] = []
    while len(held) < limit:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        held.append(message)
    return held


async def _give_back(held: list[AbstractIncomingMessage]) -> None:
    for message in held:  # one by one, in order, so a full look keeps the queue's order
        await message.nack(requeue=True)


def _last_death(headers: dict[str, FieldValue]) -> dict[str, Any]:
    """The broker's record of what parked the message, or {} when it has none.

    The broker lists deaths most recent first: the first one is what parked it (a task's
    earlier deaths are its waits expiring in an older version's TTL tiers). Its fields are the
    broker's own, read as they come (`time` a datetime, `routing-keys` a list)."""
    deaths = headers.get("x-death")
    first = deaths[0] if isinstance(deaths, list) and deaths else None
    return first if isinstance(first, dict) else {}


def _text(value: object) -> str | None:
    # AMQP strings may arrive as bytes; a publisher may have put any type in its own headers.
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if value is None or isinstance(value, str) else str(value)


def _plain(value: object) -> object:
    """Header values as JSON can carry them (AMQP tables hold bytes and datetimes)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value
