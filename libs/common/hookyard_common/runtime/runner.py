"""The service runner every Hookyard service uses.

`build_app` returns an aiohttp application that owns the service's life:
on start-up it connects to the broker and the database with bounded
retries (in the background, so `/healthz` answers at once and `/readyz`
says "starting"), declares the topology and indexes, and runs the service's
`setup`; on shutdown it reports not ready, stops consuming, lets in-flight
work finish and ack within the deadline, stops background tasks and closes
the connections. The same app runs standalone (`serve`, `main`) or under
gunicorn's aiohttp worker (the ingest's `gunicorn.conf.py`), and both serve
it through `make_runner`, so slow senders meet the same deadlines either way.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractChannel
from aiohttp import web
from tenacity import AsyncRetrying, before_sleep_log, stop_after_attempt, wait_exponential

from hookyard_common.broker import outages, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.consumer import AckCoalescer, Consumer, Handler
from hookyard_common.core import logs, metric_labels, metrics, tracing
from hookyard_common.core.settings import Settings, get_settings
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.runtime.head_deadline import HeadDeadlineRunner
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

VERSION = "0.1.0"


@dataclass
class SharedChannel:
    """A channel several consumers use (a dispatcher's tenant lanes), with its one ack coalescer.
    Its prefetch applies to each consumer on it, not to the channel (RabbitMQ's basic.qos)."""

    channel: AbstractChannel
    acks: AckCoalescer = field(default_factory=AckCoalescer)


@dataclass
class Context:
    """What a running service is given: its settings, connections and HTTP app."""

    name: str
    settings: Settings
    broker: Broker
    store: Store
    app: web.Application
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Set when shutdown begins: no consumer may start taking messages after it.
    draining: bool = False

    async def consume(
        self, queue: str, handler: Handler, prefetch: int | None = None, *, shared: SharedChannel | None = None
    ) -> None:
        """Consume `queue` on a channel of its own, or on `shared` beside other consumers. Refused
        once shutdown began: a consumer added then would never be drained."""
        if self.draining:
            return
        if shared is None:
            shared = SharedChannel(await self.broker.channel(prefetch or self.settings.prefetch))
        # Lanes are counted as the dispatch queue: one label per tenant would grow without bound.
        label = topology.DISPATCH_QUEUE if topology.carries_events(queue) else queue
        # Unusable messages parked with their reason, dependency outages waited out (outages.py).
        triage = outages.Triage(
            self.broker, queue, handler, self.settings.retry_tiers_ms, self.settings.outage_retry_max_seconds, label
        )
        consumer = Consumer(shared.channel, queue, triage, shared.acks, label)
        await consumer.start()
        self.consumers.append(consumer)
        if self.draining:  # shutdown began while it started, after the drain listed the consumers
            await consumer.stop(self.settings.shutdown_deadline_seconds)

    def background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a loop until shutdown; it is cancelled after consumers have drained."""
        self.tasks.append(asyncio.create_task(coroutine))

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` at shutdown, once consumers and background tasks are done."""
        self.closers.append(closer)


Setup = Callable[[Context], Awaitable[None]]


async def connect_with_retries(settings: Settings) -> tuple[Broker, Store]:
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.connect_attempts),
        wait=wait_exponential(multiplier=0.2, max=settings.connect_max_wait_seconds),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            store = await Store.connect(
                settings.mongo_uri, settings.mongo_db, timeout_seconds=settings.mongo_timeout_seconds
            )
    async for attempt in retrying:
        with attempt:
            broker = await Broker.connect(
                settings.amqp_url,
                settings.retry_tiers_ms,
                publish_timeout_seconds=settings.publish_timeout_seconds,
                other_service_users=settings.broker_service_users,
            )
    return broker, store


class Lifecycle:
    """Start-up, readiness and shutdown of one service process."""

    def __init__(self, name: str, setup: Setup, settings: Settings):
        self.name = name
        self.setup = setup
        self.settings = settings
        self.ctx: Context | None = None
        self.stopping = False
        self.failed = asyncio.Event()
        self.ready = asyncio.Event()
        self._starting: asyncio.Task | None = None

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        metrics.set_service(self.name, VERSION, running_loop())
        self._starting = asyncio.create_task(self._start(app))
        yield
        self.stopping = True
        if not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        if self.ctx is not None:
            await self._drain(self.ctx)
            await self.ctx.broker.close()
            await self.ctx.store.close()
        log.info("stopped")

    async def on_shutdown(self, _: web.Application) -> None:
        self.stopping = True  # readiness fails from now on, so traffic moves elsewhere

    async def _start(self, app: web.Application) -> None:
        try:
            broker, store = await connect_with_retries(self.settings)
            await store.ensure_indexes(COLLECTIONS, self.settings)
            ctx = Context(self.name, self.settings, broker, store, app)
            self.ctx = ctx
            await self.setup(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.critical("could not start", exc_info=True)
            self.failed.set()
            return
        self.ready.set()
        log.info("ready")

    async def _drain(self, ctx: Context) -> None:
        deadline_seconds = self.settings.shutdown_deadline_seconds
        log.info("shutting down", extra={"deadline_seconds": deadline_seconds})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        ctx.draining = True
        results = await asyncio.gather(*(c.stop(deadline_seconds) for c in ctx.consumers))
        if not all(results):
            log.warning("deadline passed with messages in flight; the broker will redeliver them")
        for task in ctx.tasks:
            task.cancel()
        if ctx.tasks:
            await asyncio.wait(ctx.tasks, timeout=max(0.1, deadline - loop.time()))
        for closer in ctx.closers:
            await closer()

    async def readyz(self, _: web.Request) -> web.Response:
        body = await self.readiness()
        return web.json_response(body, status=200 if body["status"] == "ready" else 503)

    async def readiness(self) -> dict:
        """What /readyz answers: `status` ("ready" or "not ready"), the dependencies' `checks`, a `reason`."""
        ctx = self.ctx
        checks = {"broker": False, "database": False}
        if ctx is not None:
            checks["broker"] = ctx.broker.is_connected
            try:
                await ctx.store.ping(self.settings.readiness_timeout_seconds)
                checks["database"] = True
            except Exception:
                checks["database"] = False
        for dependency, up in checks.items():
            metrics.DEPENDENCY_UP.labels(dependency).set(int(up))
        ready = self.ready.is_set() and all(checks.values()) and not self.stopping
        metrics.READY.set(int(ready))
        body: dict = {"status": "ready" if ready else "not ready", "checks": checks}
        if self.stopping:
            body["reason"] = "shutting down"
        elif self.failed.is_set():
            body["reason"] = "start-up failed"
        elif not self.ready.is_set():
            body["reason"] = "starting"
        return body


LIFECYCLE = web.AppKey("hookyard_lifecycle", Lifecycle)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def metrics_handler(lifecycle: Lifecycle):
    async def handler(_: web.Request) -> web.Response:
        # The broker's state costs nothing to read, so every scrape refreshes it:
        # the broker-unreachable alert works where nothing polls /readyz (VMs).
        if lifecycle.ctx is not None:
            metrics.DEPENDENCY_UP.labels("broker").set(int(lifecycle.ctx.broker.is_connected))
        payload, content_type = metrics.exposition()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    return handler


def probe_routes(lifecycle: Lifecycle) -> list[web.RouteDef]:
    """Liveness and readiness: harmless to publish, so the ingest also serves them under ROOT_PATH."""
    return [web.get("/healthz", healthz), web.get("/readyz", lifecycle.readyz)]


def ops_routes(lifecycle: Lifecycle) -> list[web.RouteDef]:
    """The probes and /metrics, on the service's own port (metrics never under a public prefix)."""
    return [*probe_routes(lifecycle), web.get("/metrics", metrics_handler(lifecycle))]


def build_app(name: str, setup: Setup, settings: Settings, app: web.Application | None = None) -> web.Application:
    """The service as an aiohttp app: ops routes plus a lifecycle that connects and drains."""
    app = app if app is not None else web.Application()
    lifecycle = Lifecycle(name, setup, settings)
    app[LIFECYCLE] = lifecycle
    app.add_routes(ops_routes(lifecycle))
    app.cleanup_ctx.append(lifecycle.lifespan)
    app.on_shutdown.append(lifecycle.on_shutdown)
    metric_labels.limit_tenants(settings.metrics_tenant_labels)
    return app


def lifecycle_of(app: web.Application) -> Lifecycle:
    return app[LIFECYCLE]


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """How every service's HTTP server is run, standalone or under gunicorn's aiohttp worker:
    request heads have a deadline from their first byte, idle connections one of their own."""
    return HeadDeadlineRunner(
        app,
        head_timeout=settings.http_read_timeout_seconds,
        keepalive_timeout=settings.http_keepalive_seconds,
        shutdown_timeout=settings.shutdown_deadline_seconds,
        access_log=None,
    )


async def serve_app(
    app: web.Application, name: str, settings: Settings, stop_signal: asyncio.Event | None = None
) -> int:
    """Serve an app made by `build_app` until SIGTERM/SIGINT (or `stop_signal`); the exit code."""
    lifecycle = lifecycle_of(app)
    stop = stop_signal
    if stop is None:  # a process of its own: signals stop it
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    http = make_runner(app, settings)
    await http.setup()
    port = settings.service_port(name)
    await web.TCPSite(http, settings.http_host, port).start()
    log.info("listening", extra={"host": settings.http_host, "port": port})
    stopped, failed = asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lifecycle.failed.wait())
    await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    failed.cancel()
    lifecycle.stopping = True  # /readyz answers 503 from here on
    if not lifecycle.failed.is_set() and settings.shutdown_unready_seconds:
        # Still serving: a load balancer polling /readyz sees the 503 and moves traffic first.
        await asyncio.sleep(settings.shutdown_unready_seconds)
    await http.cleanup()
    return 1 if lifecycle.failed.is_set() else 0


async def serve(
    name: str,
    setup: Setup,
    *,
    settings: Settings | None = None,
    app: web.Application | None = None,
    stop_signal: asyncio.Event | None = None,
) -> int:
    """Build the service's app and serve it; the exit code."""
    settings = settings or get_settings()
    return await serve_app(build_app(name, setup, settings, app), name, settings, stop_signal)


def main(
    name: str,
    setup: Setup | None = None,
    *,
    app_factory: Callable[[Settings], web.Application] | None = None,
    settings: Settings | None = None,
) -> None:
    """Console entry point: configure logging and run the service until signalled."""
    settings = settings or get_settings()
    logs.configure(name, settings.log_level, settings.log_format)
    tracing.configure(name)
    if app_factory is not None:
        app = app_factory(settings)
    elif setup is not None:
        app = build_app(name, setup, settings)
    else:
        raise TypeError(f"{name}: main() needs a setup or an app_factory")
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as run:
        sys.exit(run.run(serve_app(app, name, settings)))


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop named (HOOKYARD_EVENT_LOOP): uvloop's by default, for its lower cost per
    request (docs/benchmarks.md), or the standard library's `asyncio`."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def running_loop() -> str:
    """Which event loop this process runs on: `uvloop` or `asyncio`."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def tune_gc() -> None:
    """Collect less often: a request or a delivery allocates hundreds of short-lived objects, and
    CPython's default (a young-generation pass every 700 allocations) spends a few per cent of a
    busy service's CPU walking them. What start-up built (modules, the app) is frozen out of
    every pass (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


#: Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 20_000
