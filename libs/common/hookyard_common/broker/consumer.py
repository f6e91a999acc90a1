"""Consuming a queue with manual acks after the work is done, and stopping cleanly.

A handler returns normally to ack, raises `Reject` for a message that can
never succeed (it is parked in the invalid queue by the broker's dead-letter
arguments), and any other exception requeues the message. Acks are
coalesced: one `basic.ack` with `multiple` every few milliseconds instead of
one frame per message (and single acks for those finished out of order).
`stop` cancels the subscription first, then waits for messages already
being handled and sends their acks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiormq.abc
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from opentelemetry.trace import SpanKind

from hookyard_common.core import logs, metrics, tracing

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Reject(Exception):
    """The message is unusable (bad schema, unknown version): do not requeue it."""


@dataclass
class _ChannelAcks:
    handling: set[int] = field(default_factory=set)
    finished: list[int] = field(default_factory=list)


def ack_plan(handling: set[int], finished: list[int]) -> tuple[int | None, list[int]]:
    """How to ack `finished` tags while `handling` ones are still in hand: one multiple
    ack up to the oldest message in hand, and one single ack for each tag after it."""
    oldest_handled = min(handling, default=None)
    before = [tag for tag in finished if oldest_handled is None or tag < oldest_handled]
    after = sorted(tag for tag in finished if oldest_handled is not None and tag > oldest_handled)
    return (max(before) if before else None), after


class AckCoalescer:
    """Acks finished messages a batch at a time, with `basic.ack(multiple=True)`.

    A multiple ack settles every unsettled delivery up to its tag, so it only
    reaches up to the oldest message still being handled; messages finished
    after it are acked one by one in the same round. They must not wait for
    it: an unacked message holds a place in the prefetch window, and one
    delivery hanging for its whole timeout would otherwise keep every message
    after it in the window too, until the replica stops taking any.
    Each ack goes to the channel that delivered the
    messages: after a reconnect the old channel's tags are dropped (the
    broker redelivers those messages) and never applied to the new channel.
    """

    def __init__(self, max_delay: float = 0.005, max_batch: int = 32):
        self.max_delay = max_delay
        self.max_batch = max_batch
        self._channels: dict[aiormq.abc.AbstractChannel, _ChannelAcks] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = 0
        self._sending: set[asyncio.Task] = set()

    def started(self, message: AbstractIncomingMessage) -> None:
        self._channels.setdefault(message.channel, _ChannelAcks()).handling.add(_delivery_tag(message))

    def settled(self, message: AbstractIncomingMessage) -> None:
        """Settled some other way (reject, nack): no longer holds multiple acks back."""
        acks = self._channels.get(message.channel)
        if acks is not None:
            acks.handling.discard(_delivery_tag(message))

    def finished(self, message: AbstractIncomingMessage) -> None:
        acks = self._channels.setdefault(message.channel, _ChannelAcks())
        tag = _delivery_tag(message)
        acks.handling.discard(tag)
        acks.finished.append(tag)
        self._unsent += 1
        if self._unsent >= self.max_batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unsent = 0
        for channel, acks in list(self._channels.items()):
            if channel.is_closed:
                del self._channels[channel]
                continue
            upto, singles = ack_plan(acks.handling, acks.finished)
            acks.finished = []
            if upto is not None:
                self._send(channel.basic_ack(delivery_tag=upto, multiple=True))
            for tag in singles:
                self._send(channel.basic_ack(delivery_tag=tag, multiple=False))

    def _send(self, ack: Awaitable[None]) -> None:
        task = asyncio.ensure_future(_settle(ack))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Send every ack that can be sent now, and wait until they are written."""
        self.flush()
        if self._sending:
            await asyncio.gather(*self._sending)


class Consumer:
    """One subscription. Consumers sharing a channel must share its `acks` too: a multiple ack
    settles every delivery on the channel up to its tag, whichever consumer took it. `label`
    names the queue in metrics (tenant lanes are counted under the shared dispatch queue)."""

    def __init__(
        self,
        channel: AbstractChannel,
        queue_name: str,
        handler: Handler,
        acks: AckCoalescer | None = None,
        label: str | None = None,
    ):
        self.channel = channel
        self.queue_name = queue_name
        self.handler = handler
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._acks = acks or AckCoalescer()
        label = label or queue_name
        self._span_name = f"{label} process"
        self._span_attributes = {"messaging.system": "rabbitmq", "messaging.destination.name": queue_name}
        # Label lookups once, not per message.
        self._in_flight_gauge = metrics.IN_FLIGHT.labels(label)
        self._handling_seconds = metrics.MESSAGE_HANDLING_SECONDS.labels(label)
        self._consumed = {
            outcome: metrics.MESSAGES_CONSUMED.labels(label, outcome) for outcome in ("ack", "reject", "requeue")
        }

    async def start(self) -> None:
        # passive: the topology module owns declaration; this only binds to it.
        self._queue = await self.channel.get_queue(self.queue_name, ensure=True)
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is None:  # aio-pika runs every consumer callback in a task of its own
            raise RuntimeError("a message handled outside a task cannot be waited for")
        self._in_flight.add(task)
        self._in_flight_gauge.inc()
        started = time.perf_counter()
        try:
            with logs.scope():  # the ids the handler binds (event, tenant) are this message's
                outcome = await self._handle(message)
        finally:
            self._in_flight.discard(task)
            self._in_flight_gauge.dec()
        self._consumed[outcome].inc()
        self._handling_seconds.observe(time.perf_counter() - started)

    async def _handle(self, message: AbstractIncomingMessage) -> str:
        self._acks.started(message)
        try:
            with tracing.span(self._span_name, SpanKind.CONSUMER, message.headers or {}, self._span_attributes):
                await self.handler(message)
        except Reject as exc:
            log.warning("message rejected", extra={"queue": self.queue_name, "reason": str(exc)})
            self._acks.settled(message)
            await _settle(message.reject(requeue=False))
            return "reject"
        except Exception:
            log.exception("handler failed; message requeued", extra={"queue": self.queue_name})
            self._acks.settled(message)
            await _settle(message.nack(requeue=True))
            return "requeue"
        self._acks.finished(message)
        return "ack"

    async def stop(self, deadline_seconds: float) -> bool:
        """Stop taking messages and wait for those in hand. True if all finished in time."""
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception:  # the channel may already be gone; in-flight work still matters
                log.warning("could not cancel consumer", extra={"queue": self.queue_name})
            self._tag = None
        pending = set(self._in_flight)
        finished = True
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=deadline_seconds)
            finished = not still_running
        await self._acks.drain()
        return finished


def _delivery_tag(message: AbstractIncomingMessage) -> int:
    # Consumed with acks (no_ack=False), every message has a tag; only no_ack ones lack it.
    if message.delivery_tag is None:
        raise ValueError("a message consumed with no_ack has no delivery tag to settle")
    return message.delivery_tag


async def _settle(settling: Awaitable[None]) -> None:
    # After a reconnect the delivery tag is void and the broker redelivers the
    # message by itself (at least once); there is nothing more to do here.
    try:
        await settling
    except Exception as exc:
        log.warning("could not settle message; the broker will redeliver it", extra={"error": repr(exc)})
