"""`hookyard listen` on the ingest: `GET /v1/sources/{id}/listen`, `GET /v1/endpoints/{id}/listen`.

A WebSocket, authenticated with the tenant's API key (`Authorization:
Bearer`); the frames are described in `hookyard_common.listen_wire`. One
connection's life:

1. the tenant, its own source or endpoint (404 otherwise), the per-tenant
   limit (429) — all answered as JSON errors before the upgrade;
2. its own broker queue is bound (`tenant_feed`), so nothing accepted from
   then on is missed; `hello` carries the server time it happened;
3. with `?since=`, the message log from then on is sent, oldest first, and
   read once more a few seconds later for messages the dispatcher had not
   logged yet; then `caught_up`. The live stream may repeat some of them:
   clients drop repeats by event id;
4. live events, in order, through a bounded outbox, with heartbeats.

A listener is dropped with a close code and reason when it reads too slowly
(more than HOOKYARD_LISTEN_BUFFER_BYTES waiting: 4008), when the ingest loses
the broker (1011), when its source or endpoint is deleted (4004), and when
the ingest shuts down (1012). Nothing a listener does changes what the
platform does with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from datetime import datetime, timedelta

from aiohttp import WSMsgType, web
from prometheus_client import Counter, Gauge

from hookyard_common.broker.connection import Broker
from hookyard_common.core.settings import Settings
from hookyard_common.delivery.endpoint_cache import COLLECTION as ENDPOINTS
from hookyard_common.listen_wire import (
    CLOSE_BROKER_LOST,
    CLOSE_SHUTDOWN,
    CLOSE_TARGET_GONE,
    CLOSE_TOO_SLOW,
    CaughtUp,
    EventFrame,
    Heartbeat,
    Hello,
)
from hookyard_common.records.sources import COLLECTION as SOURCES
from hookyard_common.schemas import Event, new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import time_param
from hookyard_ingest.listen.feed import TenantFeed
from hookyard_ingest.listen.outbox import Outbox
from hookyard_ingest.listen.targets import EndpointTarget, SourceTarget, TargetGone

log = logging.getLogger(__name__)

LISTENERS = Gauge(
    "hookyard_listeners_connected",
    "`hookyard listen` connections open, by target kind.",
    ["kind"],
    multiprocess_mode="livesum",
)
LISTENER_EVENTS = Counter(
    "hookyard_listener_events_total", "Events sent to listeners: live, or caught up from the message log.", ["how"]
)
LISTENERS_DROPPED = Counter(
    "hookyard_listeners_dropped_total",
    "Listeners the ingest disconnected: too_slow, broker_lost, target_gone, shutdown.",
    ["reason"],
)

# One catch-up sends at most this many messages (the oldest of the window).
CATCH_UP_LIMIT = 1_000
# The dispatcher logs messages a moment after they were accepted: the log is read again after this.
CATCH_UP_SETTLE_SECONDS = 3.0
# Messages are stamped by whichever replica accepted them; a catch-up reads this far past `hello.at`.
CLOCK_SKEW = timedelta(seconds=10)
CLOSE_HANDSHAKE_SECONDS = 5.0

Target = SourceTarget | EndpointTarget


class ListenSession:
    """One listener's connection: its broker feed, its outbox, its catch-up and its end."""

    def __init__(self, ws: web.WebSocketResponse, target: Target, store: Store, broker: Broker, settings: Settings):
        self.id = new_id("lst")
        self.ws = ws
        self.target = target
        self.store = store
        self.settings = settings
        self.outbox = Outbox(settings.listen_buffer_bytes)
        self.feed = TenantFeed(
            broker, target.tenant_id, f"hookyard.listen.{self.id}", self._on_event, self._on_lost, target.must_contain
        )
        self._bound_at: datetime | None = None
        self._close: tuple[int, str] | None = None
        self._dropped = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------ dropping

    def drop(self, code: int, reason: str, message: str) -> None:
        """End the connection with `code` and `message` (short: a close frame holds 123 bytes)."""
        if self._dropped.is_set():
            return
        self._close = (code, message)
        LISTENERS_DROPPED.labels(reason).inc()
        log.info("listener dropped", extra={"listener_id": self.id, "reason": reason})
        self._dropped.set()

    def _on_lost(self) -> None:
        self.drop(CLOSE_BROKER_LOST, "broker_lost", "the ingest lost the broker; reconnect to catch up")

    def _offer(self, frame: str) -> bool:
        if self.outbox.offer(frame):
            return True
        self.drop(
            CLOSE_TOO_SLOW,
            "too_slow",
            f"listener too slow: over {self.settings.listen_buffer_bytes} bytes waiting",
        )
        return False

    # ------------------------------------------------------------ frames

    def _frame(self, event: Event, *, replayed: bool) -> str | None:
        request = self.target.request_for(event, utcnow())
        if request is None:
            return None
        return EventFrame(
            id=event.id,
            event_type=event.event_type,
            received_at=event.occurred_at,
            source_id=event.source_id,
            replayed=replayed,
            request=request,
        ).to_text()

    def _on_event(self, event: Event) -> None:
        frame = self._frame(event, replayed=False)
        if frame is not None and self._offer(frame):
            LISTENER_EVENTS.labels("live").inc()

    # ------------------------------------------------------------ running

    async def subscribe(self) -> None:
        await self.feed.open()
        self._bound_at = utcnow()

    @property
    def bound_at(self) -> datetime:
        """When the feed was bound: live events come from then on, the log covers before."""
        if self._bound_at is None:  # _serve subscribes before it runs the session
            raise RuntimeError("the listener is not subscribed yet")
        return self._bound_at

    async def run(self, since: datetime | None) -> None:
        hello = Hello(
            listener_id=self.id,
            target=self.target.kind,
            target_id=self.target.id,
            at=self.bound_at,
            heartbeat_seconds=self.settings.listen_heartbeat_seconds,
            catching_up=since is not None,
        )
        await self.ws.send_str(hello.to_text())
        self._start(self._stream(since), self._heartbeats(), self._watch_target())
        reader = asyncio.create_task(self._read())
        dropped = asyncio.create_task(self._dropped.wait())
        try:
            while not (reader.done() or dropped.done()):
                # Tasks may be added meanwhile (the second catch-up pass): wait again for those.
                waiting = {reader, dropped, *(t for t in self._tasks if not t.done())}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if any(t.done() and not t.cancelled() and t.exception() for t in self._tasks):
                    break
        finally:
            for task in (reader, dropped, *self._tasks):
                task.cancel()
            results = await asyncio.gather(reader, dropped, *self._tasks, return_exceptions=True)
            await self.feed.close()
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.error("listener failed", exc_info=result, extra={"listener_id": self.id})
        if self._close is not None and not self.ws.closed:
            code, message = self._close
            # A listener that does not read may never take the close frame: stop waiting for it.
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), CLOSE_HANDSHAKE_SECONDS)

    def _start(self, *coroutines) -> None:
        self._tasks.extend(asyncio.create_task(c) for c in coroutines)

    async def _read(self) -> None:
        """Clients send nothing; reading lets aiohttp answer pings and notice the close."""
        while True:
            message = await self.ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    async def _stream(self, since: datetime | None) -> None:
        if since is not None:
            sent: set[str] = set()
            await self._catch_up(since, sent)
            self._start(self._settle(since, sent))
        while True:
            await self.ws.send_str(await self.outbox.take())

    async def _settle(self, since: datetime, sent: set[str]) -> None:
        await asyncio.sleep(CATCH_UP_SETTLE_SECONDS)
        truncated = await self._catch_up(since, sent)
        await self.ws.send_str(CaughtUp(count=len(sent), truncated=truncated, at=self.bound_at).to_text())

    async def _catch_up(self, since: datetime, sent: set[str]) -> bool:
        """Send the logged messages from `since` not sent yet, oldest first; True when the limit cut it short."""
        logged = self.target.logged(self.store, since, self.bound_at + CLOCK_SKEW)
        async with contextlib.aclosing(logged):
            async for event in logged:
                if event.id in sent:
                    continue
                if len(sent) >= CATCH_UP_LIMIT:
                    return True
                frame = self._frame(event, replayed=True)
                if frame is None:
                    continue
                sent.add(event.id)
                await self.ws.send_str(frame)
                LISTENER_EVENTS.labels("caught_up").inc()
        return False

    async def _heartbeats(self) -> None:
        # Through the outbox, so a heartbeat also says everything queued before it was sent.
        while True:
            await asyncio.sleep(self.settings.listen_heartbeat_seconds)
            if not self._offer(Heartbeat(at=utcnow()).to_text()):
                return

    async def _watch_target(self) -> None:
        while True:
            await asyncio.sleep(self.target.refresh_seconds)
            try:
                await self.target.reload(self.store)
            except TargetGone as exc:
                self.drop(CLOSE_TARGET_GONE, "target_gone", str(exc))
                return
            except Exception as exc:  # the database is away: keep what we have
                log.warning("could not re-read the listener's target", extra={"error": repr(exc)})


class ListenRoutes:
    def __init__(self, store: Store, broker: Broker, settings: Settings):
        self.store = store
        self.broker = broker
        self.settings = settings
        self.sessions: set[ListenSession] = set()
        self.per_tenant: Tally[str] = Tally()
        self.closing = False

    async def source(self, request: web.Request) -> web.StreamResponse:
        doc = await self._own(request, SOURCES, "source")
        return await self._serve(request, SourceTarget(doc, self.settings.source_cache_seconds))

    async def endpoint(self, request: web.Request) -> web.StreamResponse:
        doc = await self._own(request, ENDPOINTS, "endpoint")
        return await self._serve(request, EndpointTarget(doc, self.settings.endpoint_cache_seconds))

    async def _own(self, request: web.Request, collection: str, kind: str) -> dict:
        """The calling tenant's source or endpoint named in the path; 404 for anyone else's."""
        tenant = request[TENANT]
        doc = await self.store[collection].find_one(
            {"_id": request.match_info[f"{kind}_id"], "tenant_id": tenant["_id"]}
        )
        if doc is None:
            raise ApiError(404, f"unknown_{kind}", f"no such {kind}")
        return doc

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        settings = self.settings
        ws = web.WebSocketResponse(
            heartbeat=settings.listen_heartbeat_seconds,
            compress=False,
            timeout=CLOSE_HANDSHAKE_SECONDS,
            max_msg_size=65_536,
        )
        if not ws.can_prepare(request).ok:
            raise ApiError(
                400, "websocket_required", "connect with a WebSocket (GET with `Upgrade: websocket`)", field="Upgrade"
            )
        since = time_param(request, "since")
        if self.closing:
            raise ApiError(503, "shutting_down", "this ingest is shutting down; retry", headers={"Retry-After": "1"})
        tenant_id = target.tenant_id
        if self.per_tenant[tenant_id] >= settings.listen_max_per_tenant:
            raise ApiError(
                429,
                "too_many_listeners",
                f"at most {settings.listen_max_per_tenant} listeners per tenant on one ingest replica",
                headers={"Retry-After": "5"},
            )
        session = ListenSession(ws, target, self.store, self.broker, settings)
        self.per_tenant[tenant_id] += 1
        self.sessions.add(session)
        LISTENERS.labels(target.kind).inc()
        try:
            try:
                await session.subscribe()
            except Exception as exc:
                log.warning("could not subscribe a listener", extra={"error": repr(exc)})
                raise ApiError(
                    503, "unavailable", "could not subscribe to the broker; retry", headers={"Retry-After": "5"}
                ) from None
            await ws.prepare(request)
            log.info("listener connected", extra={"listener_id": session.id, "target": target.id})
            with contextlib.suppress(ConnectionError):  # the listener went away: nothing to answer
                await session.run(since)
        finally:
            await session.feed.close()
            LISTENERS.labels(target.kind).dec()
            self.sessions.discard(session)
            self.per_tenant[tenant_id] -= 1
            if self.per_tenant[tenant_id] <= 0:
                del self.per_tenant[tenant_id]
        return ws

    async def close_all(self) -> None:
        """At shutdown: tell every listener to reconnect (to another replica), and wait for them to go."""
        self.closing = True
        for session in list(self.sessions):
            session.drop(CLOSE_SHUTDOWN, "shutdown", "the ingest is restarting; reconnect")
        for _ in range(int((CLOSE_HANDSHAKE_SECONDS + 1) / 0.05)):
            if not self.sessions:
                return
            await asyncio.sleep(0.05)
