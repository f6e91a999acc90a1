"""The ingest service (`hookyard-ingest`): the HTTP edge.

Routes (each also under ROOT_PATH when it is set):
  POST /in/{source_id}, GET /in/{source_id}   provider webhooks (GET: Meta's handshake)
  POST /v1/tenants, GET /v1/tenants           admin: tenants
  /v1/admin/parked[/{key}[/redrive]|/redrive]  admin: messages parked in hookyard.invalid
  /v1/sources[/{id}]                           tenant: sources
  POST /v1/events                              tenant: publish an event
  /v1/endpoints[/{id}[/secret|/rotate-secret]] tenant: delivery endpoints
  GET /v1/messages[/{id}[/attempts]]          tenant: the received-message log, delivery attempts
  POST /v1/messages/{id}/resend                tenant: deliver a message again
  GET /v1/metrics                              tenant: delivery figures (seed 001)
  /v1/dead-letters[/{id}[/retry]|/replay|/replays/{id}]   tenant: dead letters, their replay and its progress
  GET /v1/sources/{id}/listen, /v1/endpoints/{id}/listen   tenant: `hookyard listen` (WebSocket)
  /v1/monitors[/{id}[/pause|/resume|/regenerate-token|/checks|/flips|/incidents|/stats]]
                                               tenant: passive monitors
  GET|HEAD|POST /ping/{token}[/{status}]       monitor pings (public, by token)
  /healthz /readyz /metrics                    probes (/metrics never under ROOT_PATH)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web

from hookyard_common.core import logs
from hookyard_common.core.settings import Settings, get_settings
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.records.rate_counters import COLLECTION as RATE_COUNTERS
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context
from hookyard_common.schemas import utcnow
from hookyard_ingest.api.dead_letters import DeadLetterRoutes
from hookyard_ingest.api.endpoints import EndpointRoutes
from hookyard_ingest.api.events import EventRoutes
from hookyard_ingest.api.messages import MessageRoutes
from hookyard_ingest.api.parked import ParkedRoutes
from hookyard_ingest.api.request_io import parse_body
from hookyard_ingest.api.stats import DeliveryMetrics
from hookyard_ingest.edge.auth import Auth, TenantCreate, public_tenant
from hookyard_ingest.edge.body_intake import INTAKE, BodyBudget, BodyIntake
from hookyard_ingest.edge.errors import ApiError, json_errors
from hookyard_ingest.edge.header_text import require_text_headers
from hookyard_ingest.edge.limits import FailureThrottle, SlidingWindowLimiter, parse_networks
from hookyard_ingest.edge.rate_leases import LeasedLimiter
from hookyard_ingest.edge.urls import public_base
from hookyard_ingest.listen.routes import ListenRoutes
from hookyard_ingest.metrics import count_responses
from hookyard_ingest.monitors.checks import CheckLog
from hookyard_ingest.monitors.pings import PingRoutes, PingSettingsCache
from hookyard_ingest.monitors.routes import MonitorRoutes
from hookyard_ingest.receiving.routes import Receiver
from hookyard_ingest.receiving.sources import SourceCache, SourceRoutes

API_BODY_LIMIT = 1_048_576


class Ingest:
    """The ingest's parts, wired once the broker and the database are reachable."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.clock = clock  # monitors' time (tests move it instead of sleeping)
        self.handlers: dict[str, object] = {}

    async def setup(self, ctx: Context) -> None:
        settings = self.settings
        trusted = parse_networks(settings.trusted_proxies)
        # One failure budget per client for every lookup it can make fail, one set of counters for every limit.
        failures = FailureThrottle(settings.failure_limit_per_ip, settings.rate_limit_window_seconds)
        auth = Auth(ctx.store, settings.admin_token, failures, trusted, settings.negative_cache_seconds)
        cache = SourceCache(ctx.store, settings.source_cache_seconds, settings.negative_cache_seconds)
        limiter = LeasedLimiter(
            SlidingWindowLimiter(settings.rate_limit_window_seconds),
            ctx.store[RATE_COUNTERS] if settings.rate_limit_shared else None,
            timeout_seconds=settings.rate_limit_store_timeout_seconds,
            fallback_seconds=settings.rate_limit_fallback_seconds,
        )

        def base_url(request: web.Request) -> str:
            return public_base(request, settings, trusted)

        monitor_changes = MonitorChanges(ctx.store, ctx.broker, self.clock)
        ping_cache = PingSettingsCache(ctx.store, settings.monitor_cache_seconds, settings.negative_cache_seconds)
        checks = CheckLog(ctx.store, timedelta(days=settings.monitor_check_retention_days))
        pings = PingRoutes(settings, ctx.store, ping_cache, monitor_changes, checks, limiter, failures, self.clock)
        ctx.on_close(pings.drain)
        self.handlers = {
            "auth": auth,
            "receiver": Receiver(settings, cache, ctx.broker, limiter, failures),
            "sources": SourceRoutes(ctx.store, cache, auth, settings, base_url),
            "messages": MessageRoutes(ctx.store, ctx.broker, auth),
            "events": EventRoutes(ctx.broker, auth),
            "endpoints": EndpointRoutes(ctx.store, ctx.broker, auth),
            "metrics": DeliveryMetrics(ctx.store, auth),
            "dead_letters": DeadLetterRoutes(ctx.store, ctx.broker, auth),
            "listen": ListenRoutes(ctx.store, ctx.broker, auth, settings),
            "monitors": MonitorRoutes(ctx.store, auth, monitor_changes, ping_cache, base_url, self.clock),
            "pings": pings,
            "parked": ParkedRoutes(ctx.broker, auth),
        }

    def part(self, name: str):
        try:
            return self.handlers[name]
        except KeyError:
            raise ApiError(
                503, "starting", "the service is starting; retry shortly", headers={"Retry-After": "1"}
            ) from None

    def routes(self) -> list[web.RouteDef]:
        def via(part: str, method: str):
            async def handler(request: web.Request) -> web.StreamResponse:
                return await getattr(self.part(part), method)(request)

            return handler

        return [
            web.post("/in/{source_id}", via("receiver", "post")),
            web.get("/in/{source_id}", via("receiver", "get"), allow_head=False),
            web.post("/v1/tenants", self.create_tenant),
            web.get("/v1/tenants", self.list_tenants),
            web.get("/v1/admin/parked", via("parked", "list")),
            web.post("/v1/admin/parked/redrive", via("parked", "redrive_all")),
            web.get("/v1/admin/parked/{key}", via("parked", "get")),
            web.post("/v1/admin/parked/{key}/redrive", via("parked", "redrive")),
            web.post("/v1/sources", via("sources", "create")),
            web.get("/v1/sources", via("sources", "list")),
            web.get("/v1/sources/{source_id}", via("sources", "get")),
            web.patch("/v1/sources/{source_id}", via("sources", "update")),
            web.delete("/v1/sources/{source_id}", via("sources", "delete")),
            web.post("/v1/events", via("events", "create")),
            web.post("/v1/endpoints", via("endpoints", "create")),
            web.get("/v1/endpoints", via("endpoints", "list")),
            web.get("/v1/endpoints/{endpoint_id}", via("endpoints", "get")),
            web.get("/v1/endpoints/{endpoint_id}/secret", via("endpoints", "secret")),
            web.patch("/v1/endpoints/{endpoint_id}", via("endpoints", "update")),
            web.delete("/v1/endpoints/{endpoint_id}", via("endpoints", "delete")),
            web.post("/v1/endpoints/{endpoint_id}/rotate-secret", via("endpoints", "rotate")),
            web.get("/v1/messages", via("messages", "list")),
            web.get("/v1/messages/{message_id}", via("messages", "get")),
            web.get("/v1/messages/{message_id}/attempts", via("messages", "attempts")),
            web.post("/v1/messages/{message_id}/resend", via("messages", "resend")),
            web.get("/v1/metrics", via("metrics", "get")),
            web.get("/v1/dead-letters", via("dead_letters", "list")),
            web.post("/v1/dead-letters/replay", via("dead_letters", "replay")),
            web.get("/v1/dead-letters/replays/{replay_id}", via("dead_letters", "progress")),
            web.get("/v1/dead-letters/{message_id}", via("dead_letters", "get")),
            web.post("/v1/dead-letters/{message_id}/retry", via("dead_letters", "retry")),
            web.get("/v1/sources/{source_id}/listen", via("listen", "source"), allow_head=False),
            web.get("/v1/endpoints/{endpoint_id}/listen", via("listen", "endpoint"), allow_head=False),
            web.post("/v1/monitors", via("monitors", "create")),
            web.get("/v1/monitors", via("monitors", "list")),
            web.get("/v1/monitors/{monitor_id}", via("monitors", "get")),
            web.patch("/v1/monitors/{monitor_id}", via("monitors", "update")),
            web.delete("/v1/monitors/{monitor_id}", via("monitors", "delete")),
            web.post("/v1/monitors/{monitor_id}/pause", via("monitors", "pause")),
            web.post("/v1/monitors/{monitor_id}/resume", via("monitors", "resume")),
            web.post("/v1/monitors/{monitor_id}/regenerate-token", via("monitors", "regenerate_token")),
            web.get("/v1/monitors/{monitor_id}/checks", via("monitors", "checks")),
            web.get("/v1/monitors/{monitor_id}/flips", via("monitors", "flips")),
            web.get("/v1/monitors/{monitor_id}/incidents", via("monitors", "incidents")),
            web.get("/v1/monitors/{monitor_id}/stats", via("monitors", "stats")),
            web.get("/ping/{token}", via("pings", "ping")),
            web.post("/ping/{token}", via("pings", "ping")),
            web.get("/ping/{token}/{status}", via("pings", "ping")),
            web.post("/ping/{token}/{status}", via("pings", "ping")),
        ]

    async def close_listeners(self, _: web.Application) -> None:
        """On shutdown, before waiting for open requests: listeners would hold it up to the deadline."""
        listen = self.handlers.get("listen")
        if listen is not None:
            await listen.close_all()

    async def create_tenant(self, request: web.Request) -> web.Response:
        auth: Auth = self.part("auth")
        auth.require_admin(request)
        body: TenantCreate = await parse_body(request, TenantCreate)
        return web.json_response(await auth.create_tenant(body.name), status=201)

    async def list_tenants(self, request: web.Request) -> web.Response:
        auth: Auth = self.part("auth")
        auth.require_admin(request)
        docs = await auth.store[TENANTS].find().sort("created_at", -1).limit(1000).to_list()
        return web.json_response({"data": [public_tenant(doc) for doc in docs]})


def create_app(settings: Settings, clock: Callable[[], datetime] = utcnow) -> web.Application:
    ingest = Ingest(settings, clock)
    intake = BodyIntake(
        settings.http_read_timeout_seconds, BodyBudget(settings.body_budget_bytes), settings.body_budget_wait_seconds
    )
    app = web.Application(
        middlewares=[count_responses, json_errors, require_text_headers, intake.middleware],
        client_max_size=API_BODY_LIMIT,
    )
    app[INTAKE] = intake
    app = runner.build_app("ingest", ingest.setup, settings, app)
    app.on_shutdown.append(ingest.close_listeners)
    routes = ingest.routes()
    if settings.root_path:
        # Behind a proxy that keeps the prefix, the same routes answer under ROOT_PATH;
        # the probes too (seed 000's health check), but never /metrics: it is not public.
        probes = runner.probe_routes(runner.lifecycle_of(app))
        routes += [web.route(r.method, settings.root_path + r.path, r.handler, **r.kwargs) for r in routes + probes]
    app.add_routes(routes)
    return app


async def gunicorn_app() -> web.AppRunner:
    """Factory for gunicorn's aiohttp worker (see gunicorn.conf.py): a runner, not a bare app,
    so workers serve with the same head deadline and keep-alive as `hookyard-ingest`."""
    settings = get_settings()
    logs.configure("ingest", settings.log_level, settings.log_format)
    return runner.make_runner(create_app(settings), settings)


def main() -> None:
    runner.main("ingest", app_factory=create_app)


if __name__ == "__main__":
    main()
