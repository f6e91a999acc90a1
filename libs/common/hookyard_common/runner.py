"""The service runner every Hookyard service uses.

It connects to the broker and the database with bounded retries, declares
the topology and indexes, serves `/healthz`, `/readyz` and `/metrics` (plus
the service's own routes), starts the service's consumers and background
tasks, and on SIGTERM or SIGINT shuts down in order within the deadline:
report not ready, stop consuming, let in-flight work finish and ack, stop
background tasks, close the HTTP server, close connections.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from tenacity import AsyncRetrying, before_sleep_log, stop_after_attempt, wait_exponential

from . import logs, metrics
from .broker import Broker
from .consumer import Consumer, Handler
from .settings import Settings, get_settings
from .store import Store

log = logging.getLogger(__name__)

VERSION = "0.1.0"


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
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def consume(self, queue: str, handler: Handler, prefetch: int | None = None) -> None:
        channel = await self.broker.channel(prefetch or self.settings.prefetch)
        consumer = Consumer(channel, queue, handler)
        await consumer.start()
        self.consumers.append(consumer)

    def background(self, coroutine: Awaitable[None]) -> None:
        """Run a loop until shutdown; it is cancelled after consumers have drained."""
        self.tasks.append(asyncio.create_task(coroutine))


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
            store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    async for attempt in retrying:
        with attempt:
            broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    return broker, store


def ops_routes(ctx_holder: dict, settings: Settings) -> list[web.RouteDef]:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        ctx: Context | None = ctx_holder.get("ctx")
        checks = {"broker": False, "database": False}
        if ctx is not None:
            checks["broker"] = ctx.broker.is_connected
            try:
                await ctx.store.ping(settings.readiness_timeout_seconds)
                checks["database"] = True
            except Exception:
                checks["database"] = False
        for dependency, up in checks.items():
            metrics.DEPENDENCY_UP.labels(dependency).set(int(up))
        stopping = ctx is None or ctx.stopping.is_set()
        ready = all(checks.values()) and not stopping
        metrics.READY.set(int(ready))
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        if stopping:
            body["reason"] = "starting" if ctx is None else "shutting down"
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_handler(_: web.Request) -> web.Response:
        payload, content_type = metrics.exposition()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    return [
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", metrics_handler),
    ]


async def serve(
    name: str,
    setup: Setup,
    *,
    settings: Settings | None = None,
    app: web.Application | None = None,
    stop_signal: asyncio.Event | None = None,
) -> None:
    """Run a service until SIGTERM/SIGINT (or `stop_signal`), then shut it down in order."""
    settings = settings or get_settings()
    app = app or web.Application()
    ctx_holder: dict = {}
    app.add_routes(ops_routes(ctx_holder, settings))
    metrics.SERVICE_INFO.info({"service": name, "version": VERSION})

    stop = stop_signal
    if stop is None:  # a process of its own: signals stop it
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    # Probes answer from the first moment (alive, not ready) while we connect.
    http = web.AppRunner(app, shutdown_timeout=settings.shutdown_deadline_seconds, access_log=None)
    await http.setup()
    site = web.TCPSite(http, settings.http_host, settings.service_port(name))
    await site.start()
    log.info("listening", extra={"host": settings.http_host, "port": settings.service_port(name)})

    ctx = None
    try:
        broker, store = await _until_stopped(connect_with_retries(settings), stop)
        if broker is None:
            return
        await store.ensure_indexes()
        ctx = Context(name=name, settings=settings, broker=broker, store=store, app=app)
        await setup(ctx)
        ctx_holder["ctx"] = ctx
        log.info("ready")
        await stop.wait()
        log.info("shutting down", extra={"deadline_seconds": settings.shutdown_deadline_seconds})
        ctx.stopping.set()
        await _drain(ctx, settings.shutdown_deadline_seconds)
    finally:
        await http.cleanup()
        if ctx is not None:
            await ctx.broker.close()
            await ctx.store.close()
        log.info("stopped")


async def _until_stopped(work: Awaitable, stop: asyncio.Event):
    """Await `work` unless a stop signal arrives first (then return (None, None))."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    return None, None


async def _drain(ctx: Context, deadline_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    results = await asyncio.gather(*(c.stop(deadline_seconds) for c in ctx.consumers))
    if not all(results):
        log.warning("shutdown deadline passed with messages in flight; the broker will redeliver them")
    for task in ctx.tasks:
        task.cancel()
    if ctx.tasks:
        await asyncio.wait(ctx.tasks, timeout=max(0.1, deadline - loop.time()))


def main(name: str, setup: Setup, app_factory: Callable[[], web.Application] | None = None) -> None:
    """Console entry point: configure logging and run the service until signalled."""
    settings = get_settings()
    logs.configure(name, settings.log_level, settings.log_format)
    app = app_factory() if app_factory else None
    asyncio.run(serve(name, setup, settings=settings, app=app))
