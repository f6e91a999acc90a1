"""Every tenant's lane, consumed side by side, so one tenant's burst queues only itself.

Each tenant's events are routed to a queue of its own (`topology.lane_queue`),
and a replica has one consumer per lane, each with its own prefetch
(`HOOKYARD_LANE_PREFETCH`): the broker hands a replica messages from every
lane that has some, so a tenant's single event waits behind at most a
prefetch window of another tenant's backlog, never behind the backlog itself.
The split must happen where the broker routes: any work the dispatcher did
per message of a backlog in one queue would put everyone behind all of it.

A replica finds lanes three ways, each idempotent: every tenant in MongoDB
at start-up and every `HOOKYARD_LANE_RESYNC_SECONDS` after (catching up on
a notice it missed, or a start during a MongoDB outage), and a notice on
`hookyard.changes` (the ingest announces each tenant it creates). It
declares a lane before consuming it, so its replica never depends on who
declared first. All lanes share one channel and its ack coalescer: a
connection has a limited number of channels (2047 by default), not tenants.
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage

from hookyard_common.broker import topology
from hookyard_common.broker.consumer import Handler
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.runtime.runner import Context, SharedChannel
from hookyard_common.schemas import new_id

log = logging.getLogger(__name__)


class Lanes:
    def __init__(self, ctx: Context, handler: Handler):
        self.ctx = ctx
        self.handler = handler
        #: Tenants whose lane this replica consumes (or that can have none).
        self.known: set[str] = set()
        self._shared: SharedChannel | None = None
        self._lock = asyncio.Lock()

    async def follow(self, tenant_id: str) -> None:
        """Declare the tenant's lane and consume it, unless this replica already does."""
        if tenant_id in self.known or not self.ctx.broker.lanes:
            return
        async with self._lock:  # one declaration and one consumer per lane, whoever asks first
            if tenant_id in self.known:
                return
            try:
                await self.ctx.broker.declare_lane(tenant_id)
            except topology.NoLane as exc:  # its events reach the shared queue instead
                log.warning("tenant without a lane", extra={"tenant_id": tenant_id, "reason": str(exc)})
                self.known.add(tenant_id)
                return
            if self._shared is None:
                self._shared = SharedChannel(await self.ctx.broker.channel(self.ctx.settings.lane_prefetch))
            await self.ctx.consume(topology.lane_queue(tenant_id), self.handler, shared=self._shared)
            self.known.add(tenant_id)

    async def resync(self) -> None:
        """Follow every tenant in the database."""
        async for tenant in self.ctx.store[TENANTS].find({}, {"_id": 1}):
            await self.follow(str(tenant["_id"]))

    async def resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.lane_resync_seconds)
            await self._resync_logged()

    async def _resync_logged(self) -> None:
        try:
            await self.resync()
        except Exception as exc:  # MongoDB or the broker away: the next round catches up
            log.warning("could not resync tenant lanes", extra={"error": repr(exc)})

    async def start(self) -> None:
        """Follow notices first, so no tenant created during the first resync is missed."""
        channel = await self.ctx.broker.channel(prefetch=256)
        # Named by us, not the server, so the robust channel can declare it again after a reconnect.
        queue = await channel.declare_queue(f"hookyard.lanes.{new_id('rep')}", exclusive=True, auto_delete=True)
        await queue.bind(topology.CHANGES_EXCHANGE)
        await queue.consume(self._on_notice, no_ack=True)
        await self._resync_logged()
        self.ctx.background(self.resync_forever())

    async def _on_notice(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.follow(message.body.decode())
        except Exception as exc:  # the periodic resync follows it later
            log.warning("could not follow a tenant's lane", extra={"error": repr(exc)})
