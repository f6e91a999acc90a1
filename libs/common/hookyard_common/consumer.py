"""Consuming a queue with manual acks after the work is done, and stopping cleanly.

A handler returns normally to ack, raises `Reject` for a message that can
never succeed (it is parked in the invalid queue by the broker's dead-letter
arguments), and any other exception requeues the message. `stop` cancels the
subscription first, then waits for messages already being handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from . import metrics

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Reject(Exception):
    """The message is unusable (bad schema, unknown version): do not requeue it."""


class Consumer:
    def __init__(self, channel: AbstractChannel, queue_name: str, handler: Handler):
        self.channel = channel
        self.queue_name = queue_name
        self.handler = handler
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task] = set()

    async def start(self) -> None:
        # passive: the topology module owns declaration; this only binds to it.
        self._queue = await self.channel.get_queue(self.queue_name, ensure=True)
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        self._in_flight.add(task)
        metrics.IN_FLIGHT.labels(self.queue_name).inc()
        started = time.perf_counter()
        try:
            outcome = await self._handle(message)
        finally:
            self._in_flight.discard(task)
            metrics.IN_FLIGHT.labels(self.queue_name).dec()
        metrics.MESSAGES_CONSUMED.labels(self.queue_name, outcome).inc()
        metrics.MESSAGE_HANDLING_SECONDS.labels(self.queue_name).observe(
            time.perf_counter() - started
        )

    async def _handle(self, message: AbstractIncomingMessage) -> str:
        try:
            await self.handler(message)
        except Reject as exc:
            log.warning(
                "message rejected", extra={"queue": self.queue_name, "reason": str(exc)}
            )
            await _settle(message.reject(requeue=False))
            return "reject"
        except Exception:
            log.exception("handler failed; message requeued", extra={"queue": self.queue_name})
            await _settle(message.nack(requeue=True))
            return "requeue"
        await _settle(message.ack())
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
        if not pending:
            return True
        _, still_running = await asyncio.wait(pending, timeout=deadline_seconds)
        return not still_running


async def _settle(settling: Awaitable[None]) -> None:
    # After a reconnect the delivery tag is void and the broker redelivers the
    # message by itself (at least once); there is nothing more to do here.
    try:
        await settling
    except Exception as exc:
        log.warning("could not settle message; the broker will redeliver it", extra={"error": repr(exc)})
