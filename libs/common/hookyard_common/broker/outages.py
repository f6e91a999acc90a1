"""A message that can never succeed, told apart from one whose dependency is away.

A consumer's handler fails for one of two reasons. The message itself is
unusable (it does not parse, it fails validation, it cannot be stored):
it is parked in `hookyard.invalid` at once, with the reason in its
`x-hookyard-reason` header, since trying again cannot help. Or something it
needs is away (MongoDB, a broker channel, DNS): the message is good and
must wait. Requeueing it at once, as any other failure is, would spin
through the queue's poison budget (`DELIVERY_LIMIT` redeliveries) in
seconds and park good messages. So it is held instead: copied with a
confirm into a retry tier (it waits in the broker, not in memory) and acked, which
costs neither the redelivery count nor a delivery attempt. Each hold in a
row waits twice as long, up to `outage_retry_max_seconds`, for as long as
the outage lasts. The retrier passes the tiers on to `hookyard.retry.due`; the
retrier sends a held message of another queue back where it came from
(`returning`). Any other exception is a bug: it is requeued, and the
poison budget still bounds it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError
from prometheus_client import Counter
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, WaitQueueTimeoutError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.consumer import Handler, Reject
from hookyard_common.broker.tiers import deferral_delay, entering, tier_for
from hookyard_common.schemas import utcnow

log = logging.getLogger(__name__)

#: Why a message was parked (read back by parked.py).
REASON_HEADER = "x-hookyard-reason"
#: The queue a parked or held message was taken from, and the routing key it had there.
ORIGIN_HEADER = "x-hookyard-origin"
ROUTING_KEY_HEADER = "x-hookyard-routing-key"
PARKED_AT_HEADER = "x-hookyard-parked-at"
#: Who published what a consumer parked, as RabbitMQ checked it: shown, never trusted (the
#: copy's own user_id is what publishers.py reads, and only a service's copy keeps one).
PUBLISHER_HEADER = "x-hookyard-publisher"
#: Holds in a row so far: the next one waits twice as long.
HOLDS_HEADER = "x-hookyard-holds"
# Headers the broker adds on dead-lettering and delivery: not carried into a copy.
BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")

#: Failures of what a handler depends on, not of the message: MongoDB unreachable or
#: without a primary, a broker channel or connection gone, a confirm not in time, DNS.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    WaitQueueTimeoutError,
    aiormq.exceptions.AMQPError,
    ChannelInvalidStateError,
    OSError,
    TimeoutError,
)

HELD = Counter(
    "hookyard_messages_held_total",
    "Messages put back on the retry tiers because a dependency (MongoDB, the broker, DNS) failed.",
    ["queue"],
)
PARKED_NOW = Counter(
    "hookyard_messages_parked_total", "Messages parked in hookyard.invalid as unusable, by queue.", ["queue"]
)


def unusable(what: str, exc: ValidationError) -> Reject:
    """The Reject of a message that failed validation, naming its first problem."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "(message)"
    return Reject(f"not {what}: {exc.error_count()} errors; {where}: {first['msg']}")


def is_dependency_failure(exc: BaseException) -> bool:
    """True when `exc`, or what it was raised from, is an outage rather than a bad message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DEPENDENCY_ERRORS):
            return True
        seen = seen.__cause__
    return False


def carried(headers: dict | None) -> dict:
    """A message's headers as a copy of it carries them: without the broker's own bookkeeping."""
    return {k: v for k, v in (headers or {}).items() if not k.startswith(BROKER_HEADERS)}


def _routing_key(message: AbstractIncomingMessage, queue: str) -> str:
    # Off the retry tiers a message has `hookyard.retry.due` as routing key: its first is in its header.
    # Anywhere else the broker's own routing key holds (a publisher could set the header).
    if queue == topology.RETRY_DUE_QUEUE:
        return str((message.headers or {}).get(ROUTING_KEY_HEADER) or message.routing_key or "")
    return message.routing_key or ""


class Triage:
    """Wraps a queue's handler: unusable messages parked with a reason, outages held."""

    def __init__(
        self,
        broker: Broker,
        queue: str,
        handler: Handler,
        tiers_ms: tuple[int, ...],
        max_seconds: float,
        label: str | None = None,
    ):
        self.broker = broker
        self.queue = queue
        self.label = label or queue  # the queue's name in metrics
        self.handler = handler
        self.tiers_ms = tiers_ms
        self.max_seconds = max_seconds

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.handler(message)
        except Reject as exc:
            await self.park(message, str(exc))
        except Exception as exc:
            if not is_dependency_failure(exc):
                raise
            await self.hold(message, exc)

    async def park(self, message: AbstractIncomingMessage, reason: str) -> None:
        headers = {
            **carried(message.headers),
            REASON_HEADER: reason[:1000],
            ORIGIN_HEADER: self.queue,
            ROUTING_KEY_HEADER: _routing_key(message, self.queue),
            PARKED_AT_HEADER: utcnow(),
            PUBLISHER_HEADER: message.user_id or "",  # always set: a sender's own value never survives
        }
        await _copy(self.broker, message, ("", topology.INVALID_QUEUE), headers)
        PARKED_NOW.labels(self.label).inc()
        log.warning("message parked", extra={"queue": self.queue, "reason": reason})

    async def hold(self, message: AbstractIncomingMessage, exc: BaseException) -> None:
        held_before = (message.headers or {}).get(HOLDS_HEADER)
        # Only `hold` writes the header, always an int; without it the message was never held.
        holds = held_before if isinstance(held_before, int) else 0
        delay = deferral_delay(holds, min(self.tiers_ms) / 1000, self.max_seconds)
        headers = {
            **carried(message.headers),
            HOLDS_HEADER: holds + 1,
            ORIGIN_HEADER: self.queue,
            ROUTING_KEY_HEADER: _routing_key(message, self.queue),
            **entering(time.time()),
        }
        tier = tier_for(delay * 1000, self.tiers_ms)
        await _copy(self.broker, message, ("", topology.tier_queue(tier)), headers)
        HELD.labels(self.label).inc()
        log.info(
            "dependency failed; message held",
            extra={"queue": self.queue, "holds": holds + 1, "error": repr(exc)},
        )


def returning(message: AbstractIncomingMessage) -> tuple[str, str] | None:
    """Where a held message of another queue goes back to (exchange, routing key), or None
    when it is the retry queue's own. Events go back through the events exchange, since the
    dispatcher checks their routing key (`<tenant>.<type>`)."""
    origin = (message.headers or {}).get(ORIGIN_HEADER)
    if message.headers is None or HOLDS_HEADER not in message.headers or origin in (None, topology.RETRY_DUE_QUEUE):
        return None
    return topology.way_back(str(origin), _routing_key(message, topology.RETRY_DUE_QUEUE))


async def send_back(broker: Broker, message: AbstractIncomingMessage, target: tuple[str, str]) -> None:
    await _copy(broker, message, target, carried(message.headers))


async def _copy(broker: Broker, message: AbstractIncomingMessage, target: tuple[str, str], headers: dict) -> None:
    """Publish the message's body to (exchange, routing key), with a confirm."""
    exchange, routing_key = target
    await broker.publish_copy(
        message.body,
        user_id=message.user_id,
        exchange=exchange,
        routing_key=routing_key,
        message_id=message.message_id,
        headers=headers,
    )


def parked_at(headers: dict) -> datetime | None:
    value = headers.get(PARKED_AT_HEADER)
    return value if isinstance(value, datetime) else None
