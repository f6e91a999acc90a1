"""The retrier's pump: each retry tier's messages passed on to `hookyard.retry.due` when due.

A tier does not keep the time itself (a TTL with dead-lettering did, until
RabbitMQ 3.10 was seen to leave a tier's expired messages in place after its
leader failed over: docs/broker.md#a-cluster). The pump consumes each tier
with a bounded prefetch instead; the tier is in due order (broker/tiers.py),
so what it holds is what is due next, and the rest waits in the broker. Each
message is held until its wait is over, published to `hookyard.retry.due`
with a confirm, as the dead-lettering did (same body, id, headers, publisher),
and only then acked: a pump that dies holding messages loses none, the broker
hands them out again. Several retrier replicas pump one tier side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter

from hookyard_common.broker import outages, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.tiers import seconds_left

log = logging.getLogger(__name__)

#: The longest a message is held unacked: a head not due by then is put back (it stays the
#: head), well before RabbitMQ's consumer timeout (30 min by default) closes the channel.
HOLD_MAX_SECONDS = 600.0
#: The pause before a message whose publish failed is put back, so an outage is not spun through.
RETRY_PAUSE_SECONDS = 1.0

RELEASED = Counter(
    "hookyard_retry_tier_released_total", "Retries the pump passed from a delay tier to hookyard.retry.due.", ["tier"]
)


class TierPump:
    """Consumes one tier and passes each message on when its wait is over."""

    def __init__(self, broker: Broker, tier_ms: int, prefetch: int):
        self.broker = broker
        self.tier_ms = tier_ms
        self.prefetch = prefetch
        self.queue_name = topology.tier_queue(tier_ms)
        self._released = RELEASED.labels(str(tier_ms))
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self) -> None:
        channel = await self.broker.channel(self.prefetch)
        self._queue = await channel.get_queue(self.queue_name, ensure=True)
        self._tag = await self._queue.consume(self._pass_on)

    async def stop(self) -> None:
        """Take no more; what is held goes back to the tier when the connection closes."""
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception:  # the channel may already be gone: its messages are back in the tier
                log.warning("could not cancel a tier's pump", extra={"queue": self.queue_name})
            self._tag = None

    async def _pass_on(self, message: AbstractIncomingMessage) -> None:
        wait = seconds_left(message.headers, self.tier_ms, time.time())
        try:
            if wait > HOLD_MAX_SECONDS:
                await asyncio.sleep(HOLD_MAX_SECONDS)
                await message.nack(requeue=True)
                return
            await asyncio.sleep(wait)
            await outages.send_back(self.broker, message, ("", topology.RETRY_DUE_QUEUE))
            await message.ack()
        except Exception as exc:  # the broker is away: the message stays in the tier, or comes back
            log.warning("could not pass a retry on", extra={"queue": self.queue_name, "error": repr(exc)})
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            await _put_back(message)
            return
        self._released.inc()


async def _put_back(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(Exception):  # its channel is gone: the broker has put it back already
        await message.nack(requeue=True)


async def start(broker: Broker, tiers_ms: tuple[int, ...], prefetch: int) -> list[TierPump]:
    """A pump on every tier, started."""
    pumps = [TierPump(broker, tier_ms, prefetch) for tier_ms in sorted(set(tiers_ms))]
    for pump in pumps:
        await pump.start()
    return pumps
