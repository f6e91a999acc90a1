"""The ingest's HTTP wiring: one aiohttp sub-application per wing of the edge.

  /in/{source_id}          receiving   POST: provider webhooks; GET: Meta's handshake (public)
  /ping/{token}[/{status}] pings       GET|HEAD|POST: monitor pings (public, by token)
  /v1/tenants[/{id}[/disable|/enable]]  admin: tenants (create, list, read, disable, enable, delete)
  /v1/admin/parked[/{key}[/redrive]|/redrive]   admin: messages parked in hookyard.invalid
  /v1/...                  tenant API  sources, events, endpoints, messages, metrics,
                                       dead letters, payload erasure, monitors, `hookyard listen` (WebSocket)
  /healthz /readyz /metrics            probes, on the root app (runner.build_app)

Each wing carries its own middlewares, inside the root app's (responses
counted, errors as JSON, header text, body intake): `readiness_gate` first,
then the wing's caller check, `admin_auth` or `tenant_auth` (which puts the
calling tenant on the request as `TENANT`, so tenant routes never look it up
themselves). The routes' objects need the broker and the database, which
start-up connects in the background after the router is frozen, so routes
are declared against `Parts`, the typed bundle `Ingest.setup` makes, and
the gate hands it to each request (503 "starting" until it exists).

With ROOT_PATH set, the same wings and the probes (not /metrics: it is not
public) are mounted once more under it, as one sub-app, so a proxy may strip
the prefix or keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hookyard_common.core.settings import Settings
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.records.rate_counters import COLLECTION as RATE_COUNTERS
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context
from hookyard_common.schemas import utcnow
from hookyard_ingest.api.api_keys import ApiKeyRoutes
from hookyard_ingest.api.dead_letters import DeadLetterRoutes
from hookyard_ingest.api.endpoints import EndpointRoutes
from hookyard_ingest.api.erasure import PayloadRoutes
from hookyard_ingest.api.event_log import EventLogRoutes
from hookyard_ingest.api.events import EventRoutes
from hookyard_ingest.api.messages import MessageRoutes
from hookyard_ingest.api.parked import ParkedRoutes
from hookyard_ingest.api.stats import DeliveryMetrics
from hookyard_ingest.api.tenants import TenantRoutes
from hookyard_ingest.edge.auth import TENANT, Auth
from hookyard_ingest.edge.body_intake import INTAKE, BodyBudget, BodyIntake
from hookyard_ingest.edge.deprecation import renamed
from hookyard_ingest.edge.errors import ApiError, json_errors
from hookyard_ingest.edge.header_text import require_text_headers
from hookyard_ingest.edge.limits import FailureThrottle, SlidingWindowLimiter, parse_networks
from hookyard_ingest.edge.metrics import count_responses
from hookyard_ingest.edge.rate_leases import LeasedLimiter
from hookyard_ingest.edge.urls import public_base
from hookyard_ingest.listen.routes import ListenRoutes
from hookyard_ingest.monitors.checks import CheckLog
from hookyard_ingest.monitors.pings import PingRoutes, PingSettingsCache
from hookyard_ingest.monitors.routes import MonitorRoutes
from hookyard_ingest.receiving.routes import Receiver
from hookyard_ingest.receiving.sources import SourceCache, SourceRoutes

API_BODY_LIMIT = 1_048_576


@dataclass(frozen=True)
class Parts:
    """What the routes call, made once the broker and the database are reachable."""

    auth: Auth
    receiver: Receiver
    pings: PingRoutes
    tenants: TenantRoutes
    parked: ParkedRoutes
    sources: SourceRoutes
    events: EventRoutes
    endpoints: EndpointRoutes
    messages: MessageRoutes
    event_log: EventLogRoutes
    metrics: DeliveryMetrics
    dead_letters: DeadLetterRoutes
    payloads: PayloadRoutes
    listen: ListenRoutes
    monitors: MonitorRoutes
    api_keys: ApiKeyRoutes


class Ingest:
    """The ingest's parts: none until `setup` has run (the runner calls it once connected)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.clock = clock  # monitors' time (tests move it instead of sleeping)
        self.parts: Parts | None = None

    async def setup(self, ctx: Context) -> None:
        settings = self.settings
        trusted = parse_networks(settings.trusted_proxies)
        # One failure budget per client for every lookup it can make fail, one set of counters for every limit.
        failures = FailureThrottle(settings.failure_limit_per_ip, settings.rate_limit_window_seconds)
        auth = Auth(
            ctx.store,
            settings.admin_token,
            failures,
            trusted,
            settings.negative_cache_seconds,
            settings.api_key_cache_seconds,
        )
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
        checks = CheckLog(ctx.store)
        pings = PingRoutes(settings, ctx.store, ping_cache, monitor_changes, checks, limiter, failures, self.clock)
        ctx.on_close(pings.drain)
        self.parts = Parts(
            auth=auth,
            receiver=Receiver(settings, cache, ctx.broker, limiter, failures),
            pings=pings,
            tenants=TenantRoutes(ctx.store, ctx.broker, auth, cache.invalidate),
            parked=ParkedRoutes(ctx.broker),
            sources=SourceRoutes(ctx.store, cache, settings, base_url),
            events=EventRoutes(ctx.broker, ctx.store, settings),
            endpoints=EndpointRoutes(ctx.store, ctx.broker),
            messages=MessageRoutes(ctx.store, ctx.broker, settings.search_scan_limit),
            event_log=EventLogRoutes(ctx.store, settings.search_scan_limit),
            metrics=DeliveryMetrics(ctx.store),
            dead_letters=DeadLetterRoutes(ctx.store, ctx.broker),
            payloads=PayloadRoutes(ctx.store),
            listen=ListenRoutes(ctx.store, ctx.broker, settings),
            monitors=MonitorRoutes(ctx.store, monitor_changes, ping_cache, base_url, self.clock),
            api_keys=ApiKeyRoutes(ctx.store, auth),
        )

    async def close_listeners(self, _: web.Application) -> None:
        """On shutdown, before waiting for open requests: listeners would hold it up to the deadline."""
        if self.parts is not None:
            await self.parts.listen.close_all()


#: The ingest, on the root app: every wing's gate reads its parts from there.
INGEST = web.AppKey("hookyard_ingest", Ingest)
#: The parts, on each request the gate let through.
PARTS = web.RequestKey("hookyard_ingest_parts", Parts)


def _routed(request: web.Request) -> bool:
    """aiohttp runs a sub-app's middlewares for every path under its prefix, matched or not:
    an unknown path or method stays the 404 or 405 it is, before readiness or credentials."""
    return request.match_info.http_exception is None


@web.middleware
async def readiness_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every wing's first: until start-up has made the parts, a route answers 503 "starting"."""
    if _routed(request):
        parts = request.config_dict[INGEST].parts
        if parts is None:
            raise ApiError(503, "starting", "the service is starting; retry shortly", headers={"Retry-After": "1"})
        request[PARTS] = parts
    return await handler(request)


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin wing's: the admin token, or a 401 (403 while the admin API is off)."""
    if _routed(request):
        request[PARTS].auth.require_admin(request)
    return await handler(request)


@web.middleware
async def tenant_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The tenant API's: the calling tenant, found by its API key, on the request as `TENANT`; or a 401."""
    if _routed(request):
        request[TENANT] = await request[PARTS].auth.tenant(request)
    return await handler(request)


def to(pick: Callable[[Parts], Handler]) -> Handler:
    """A route's handler: the method `pick` names on the parts the gate put on the request."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await pick(request[PARTS])(request)

    return handler


def old_name(pick: Callable[[Parts], Handler]) -> Handler:
    """A route under `/v1/messages`, received events' deprecated name (docs/api.md#glossary)."""
    return renamed(to(pick), "/messages", "/received-events", {"unknown_event": "unknown_message"})


@dataclass(frozen=True)
class Wing:
    """A group of routes under one prefix, behind the same middlewares."""

    prefix: str
    middlewares: tuple[Middleware, ...]
    routes: Sequence[web.RouteDef]

    def app(self) -> web.Application:
        app = web.Application(middlewares=self.middlewares)
        app.add_routes(self.routes)
        return app


RECEIVING = Wing(
    "/in",
    (readiness_gate,),
    [
        web.post("/{source_id}", to(lambda p: p.receiver.post)),
        web.get("/{source_id}", to(lambda p: p.receiver.get), allow_head=False),
    ],
)
PINGS = Wing(
    "/ping",
    (readiness_gate,),
    [
        web.get("/{token}", to(lambda p: p.pings.ping)),
        web.post("/{token}", to(lambda p: p.pings.ping)),
        web.get("/{token}/{status}", to(lambda p: p.pings.ping)),
        web.post("/{token}/{status}", to(lambda p: p.pings.ping)),
    ],
)
TENANTS = Wing(
    "/v1/tenants",
    (readiness_gate, admin_auth),
    [
        web.post("", to(lambda p: p.tenants.create)),
        web.get("", to(lambda p: p.tenants.list)),
        web.get("/{tenant_id}", to(lambda p: p.tenants.get)),
        web.delete("/{tenant_id}", to(lambda p: p.tenants.delete)),
        web.post("/{tenant_id}/disable", to(lambda p: p.tenants.disable)),
        web.post("/{tenant_id}/enable", to(lambda p: p.tenants.enable)),
    ],
)
PARKED = Wing(
    "/v1/admin",
    (readiness_gate, admin_auth),
    [
        web.get("/parked", to(lambda p: p.parked.list)),
        web.post("/parked/redrive", to(lambda p: p.parked.redrive_all)),
        web.get("/parked/{key}", to(lambda p: p.parked.get)),
        web.post("/parked/{key}/redrive", to(lambda p: p.parked.redrive)),
    ],
)
# Under the admin wings' prefixes, which aiohttp tries first (the longest prefix wins).
TENANT_API = Wing(
    "/v1",
    (readiness_gate, tenant_auth),
    [
        web.post("/sources", to(lambda p: p.sources.create)),
        web.get("/sources", to(lambda p: p.sources.list)),
        web.get("/sources/{source_id}", to(lambda p: p.sources.get)),
        web.patch("/sources/{source_id}", to(lambda p: p.sources.update)),
        web.delete("/sources/{source_id}", to(lambda p: p.sources.delete)),
        web.post("/events", to(lambda p: p.events.create)),
        web.post("/endpoints", to(lambda p: p.endpoints.create)),
        web.get("/endpoints", to(lambda p: p.endpoints.list)),
        web.get("/endpoints/{endpoint_id}", to(lambda p: p.endpoints.get)),
        web.get("/endpoints/{endpoint_id}/secret", to(lambda p: p.endpoints.secret)),
        web.patch("/endpoints/{endpoint_id}", to(lambda p: p.endpoints.update)),
        web.delete("/endpoints/{endpoint_id}", to(lambda p: p.endpoints.delete)),
        web.post("/endpoints/{endpoint_id}/rotate-secret", to(lambda p: p.endpoints.rotate)),
        # Search (docs/api.md): events by evt_ id, own and received; /messages is received-events' old name.
        web.get("/events", to(lambda p: p.event_log.list)),
        web.get("/events/{event_id}", to(lambda p: p.event_log.get)),
        web.get("/events/{event_id}/attempts", to(lambda p: p.event_log.attempts)),
        web.post("/events/{event_id}/resend", to(lambda p: p.messages.resend)),
        web.get("/received-events", to(lambda p: p.messages.list)),
        web.get("/received-events/{event_id}", to(lambda p: p.messages.get)),
        web.get("/received-events/{event_id}/attempts", to(lambda p: p.messages.attempts)),
        web.post("/received-events/{event_id}/resend", to(lambda p: p.messages.resend)),
        web.get("/messages", old_name(lambda p: p.messages.list)),
        web.get("/messages/{event_id}", old_name(lambda p: p.messages.get)),
        web.get("/messages/{event_id}/attempts", old_name(lambda p: p.messages.attempts)),
        web.post("/messages/{event_id}/resend", old_name(lambda p: p.messages.resend)),
        web.get("/metrics", to(lambda p: p.metrics.get)),
        web.get("/dead-letters", to(lambda p: p.dead_letters.list)),
        web.post("/dead-letters/replay", to(lambda p: p.dead_letters.replay)),
        web.get("/dead-letters/replays/{replay_id}", to(lambda p: p.dead_letters.progress)),
        web.get("/dead-letters/{message_id}", to(lambda p: p.dead_letters.get)),
        web.post("/dead-letters/{message_id}/retry", to(lambda p: p.dead_letters.retry)),
        # Erasure (data protection): each route takes a received event's or an own event's id.
        web.delete("/events/{event_id}/payload", to(lambda p: p.payloads.erase)),
        web.delete("/received-events/{event_id}/payload", to(lambda p: p.payloads.erase)),
        web.delete("/messages/{event_id}/payload", old_name(lambda p: p.payloads.erase)),
        web.get("/sources/{source_id}/listen", to(lambda p: p.listen.source), allow_head=False),
        web.get("/endpoints/{endpoint_id}/listen", to(lambda p: p.listen.endpoint), allow_head=False),
        web.post("/monitors", to(lambda p: p.monitors.create)),
        web.get("/monitors", to(lambda p: p.monitors.list)),
        web.get("/monitors/{monitor_id}", to(lambda p: p.monitors.get)),
        web.patch("/monitors/{monitor_id}", to(lambda p: p.monitors.update)),
        web.delete("/monitors/{monitor_id}", to(lambda p: p.monitors.delete)),
        web.post("/monitors/{monitor_id}/pause", to(lambda p: p.monitors.pause)),
        web.post("/monitors/{monitor_id}/resume", to(lambda p: p.monitors.resume)),
        web.post("/monitors/{monitor_id}/regenerate-token", to(lambda p: p.monitors.regenerate_token)),
        web.get("/monitors/{monitor_id}/checks", to(lambda p: p.monitors.checks)),
        web.get("/monitors/{monitor_id}/flips", to(lambda p: p.monitors.flips)),
        web.get("/monitors/{monitor_id}/incidents", to(lambda p: p.monitors.incidents)),
        web.get("/monitors/{monitor_id}/stats", to(lambda p: p.monitors.stats)),
        # §4: a tenant's own API keys.
        web.post("/api-keys", to(lambda p: p.api_keys.create)),
        web.get("/api-keys", to(lambda p: p.api_keys.list)),
        web.delete("/api-keys/{key_id}", to(lambda p: p.api_keys.revoke)),
        web.post("/api-keys/{key_id}/rotate", to(lambda p: p.api_keys.rotate)),
    ],
)
WINGS = (RECEIVING, PINGS, TENANTS, PARKED, TENANT_API)


def mount_wings(app: web.Application) -> None:
    for wing in WINGS:
        app.add_subapp(wing.prefix, wing.app())


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
    app[INGEST] = ingest
    app = runner.build_app("ingest", ingest.setup, settings, app)
    app.on_shutdown.append(ingest.close_listeners)
    mount_wings(app)
    if settings.root_path:
        # Behind a proxy that keeps the prefix (seed 000's health check reads /readyz under it).
        public = web.Application()
        public.add_routes(runner.probe_routes(runner.lifecycle_of(app)))
        mount_wings(public)
        app.add_subapp(settings.root_path, public)
    return app
