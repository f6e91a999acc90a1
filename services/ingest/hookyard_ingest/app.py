"""The ingest's HTTP wiring: one aiohttp sub-application per wing of the edge.

  /in/{source_id}          receiving   POST: provider webhooks; GET: Meta's handshake (public)
  <alias>/receive|/health  receiving   a source's fixed path (seed 000), for requests no route matched
  /ping/{token}[/{status}] pings       GET|HEAD|POST: monitor pings (public, by token, or ping key and slug)
  /webhooks/{token}[/heartbeat]        POST: a status push, GET: a heartbeat, at seed 004's URLs (public, by token)
  /badge/{key}.svg|.json   badges      GET: a monitor's state (public, by badge key)
  /v1/openapi.json /v1/docs reference  GET: the OpenAPI document and its page (public)
  /v1/tenants[/{id}[/disable|/enable]]  admin: tenants (create, list, read, disable, enable, delete)
  /v1/admin/parked[/{key}[/redrive]|/redrive]   admin: messages parked in hookyard.invalid
  /v1/admin/overview       admin       queues, parked, dead letters per tenant, services' readiness
  /v1/...                  tenant API  sources, events, endpoints, messages, metrics,
                                       dead letters, payload erasure, monitors, `hookyard listen` (WebSocket)
  /console/ /console/static/*        console     GET: the console's page and files (public; docs/console.md)
  /console/session         console     sign in (POST), read (GET), act as a tenant (PUT), sign out (DELETE)
  /healthz /readyz /metrics            probes, on the root app (runner.build_app)

Each wing carries its own middlewares, inside the root app's (responses
counted, errors as JSON, header text, body intake): `readiness_gate` first,
then the wing's caller check, `admin_auth` or `tenant_auth` (which puts the
calling tenant on the request as `TENANT`, so tenant routes never look it up
themselves); both take a console session's cookie as well as a bearer
header (`console/sessions.py`). The routes' objects need the broker and the database, which
start-up connects in the background after the router is frozen, so routes
are declared against `Parts`, the typed bundle `Ingest.setup` makes, and
the gate hands it to each request (503 "starting" until it exists).

The route table is a list of typed `Operation`s (`openapi/operation.py`): each
wing makes its aiohttp routes from them, and `openapi/document.py` the OpenAPI
document, so what is served and what is published are one list.

With ROOT_PATH set, the same wings and the probes (not /metrics: it is not
public) are mounted once more under it, as one sub-app, so a proxy may strip
the prefix or keep it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hookyard_common.core import logs
from hookyard_common.core.settings import Settings
from hookyard_common.delivery.endpoints import EndpointCreate, EndpointFields
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import MonitorCreate, MonitorFields
from hookyard_common.records.rate_counters import COLLECTION as RATE_COUNTERS
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context
from hookyard_common.schemas import utcnow
from hookyard_ingest.api.api_keys import ApiKeyRoutes, KeyCreate, KeyRotate
from hookyard_ingest.api.dead_letters import BulkReplay, DeadLetterRoutes
from hookyard_ingest.api.endpoint_import import EndpointImport, SeedConfig
from hookyard_ingest.api.endpoints import EndpointRoutes, Rotation
from hookyard_ingest.api.erasure import PayloadRoutes
from hookyard_ingest.api.event_log import EventLogRoutes
from hookyard_ingest.api.events import EventCreate, EventRoutes
from hookyard_ingest.api.messages import MessageRoutes, Resend
from hookyard_ingest.api.overview import OverviewRoutes
from hookyard_ingest.api.parked import ParkedRoutes
from hookyard_ingest.api.stats import DeliveryMetrics
from hookyard_ingest.api.tenants import TenantCreate, TenantRoutes
from hookyard_ingest.console import shell
from hookyard_ingest.console.sessions import ActAs, ConsoleSessions, SignIn
from hookyard_ingest.edge import access_log
from hookyard_ingest.edge.auth import TENANT, Auth
from hookyard_ingest.edge.body_intake import INTAKE, BodyBudget, BodyIntake
from hookyard_ingest.edge.deprecation import renamed
from hookyard_ingest.edge.errors import ApiError, json_errors
from hookyard_ingest.edge.header_text import require_text_headers
from hookyard_ingest.edge.limits import FailureThrottle, SlidingWindowLimiter, parse_networks
from hookyard_ingest.edge.log_scope import scope_logs
from hookyard_ingest.edge.metrics import count_responses
from hookyard_ingest.edge.rate_leases import LeasedLimiter
from hookyard_ingest.edge.request_spans import trace_requests
from hookyard_ingest.edge.urls import public_base
from hookyard_ingest.listen.routes import ListenRoutes
from hookyard_ingest.monitors.badges import BadgeRoutes
from hookyard_ingest.monitors.checks import CheckLog
from hookyard_ingest.monitors.ping_keys import PingKeyRoutes
from hookyard_ingest.monitors.pings import PingRoutes, PingSettingsCache
from hookyard_ingest.monitors.routes import MonitorRoutes
from hookyard_ingest.openapi import document, parameters, resources
from hookyard_ingest.openapi.operation import Access, Operation
from hookyard_ingest.openapi.reference import REFERENCE, Reference
from hookyard_ingest.receiving import path_aliases
from hookyard_ingest.receiving.path_aliases import AliasCache
from hookyard_ingest.receiving.routes import Receiver
from hookyard_ingest.receiving.sources import SourceCache, SourceCreate, SourceFields, SourceRoutes

API_BODY_LIMIT = 1_048_576


@dataclass(frozen=True)
class Parts:
    """What the routes call, made once the broker and the database are reachable."""

    auth: Auth
    receiver: Receiver
    pings: PingRoutes
    badges: BadgeRoutes
    ping_keys: PingKeyRoutes
    tenants: TenantRoutes
    parked: ParkedRoutes
    overview: OverviewRoutes
    sources: SourceRoutes
    events: EventRoutes
    endpoints: EndpointRoutes
    endpoint_import: EndpointImport
    messages: MessageRoutes
    event_log: EventLogRoutes
    metrics: DeliveryMetrics
    dead_letters: DeadLetterRoutes
    payloads: PayloadRoutes
    listen: ListenRoutes
    monitors: MonitorRoutes
    api_keys: ApiKeyRoutes
    console: ConsoleSessions


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
        aliases = AliasCache(ctx.store, settings.source_cache_seconds, settings.negative_cache_seconds)
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
        badges = BadgeRoutes(settings, ctx.store, failures)
        ctx.on_close(pings.drain)
        endpoints = EndpointRoutes(ctx.store, ctx.broker)
        self.parts = Parts(
            auth=auth,
            receiver=Receiver(settings, ctx.store, cache, ctx.broker, limiter, failures, aliases),
            pings=pings,
            badges=badges,
            ping_keys=PingKeyRoutes(ctx.store, base_url, self.clock),
            tenants=TenantRoutes(ctx.store, ctx.broker, auth, cache.invalidate),
            parked=ParkedRoutes(ctx.broker),
            overview=OverviewRoutes(ctx.store, ctx.broker, settings),
            sources=SourceRoutes(ctx.store, cache, aliases, settings, base_url),
            events=EventRoutes(ctx.broker, ctx.store, settings),
            endpoints=endpoints,
            endpoint_import=EndpointImport(endpoints),
            messages=MessageRoutes(ctx.store, ctx.broker, settings.search_scan_limit),
            event_log=EventLogRoutes(ctx.store, settings.search_scan_limit),
            metrics=DeliveryMetrics(ctx.store),
            dead_letters=DeadLetterRoutes(ctx.store, ctx.broker),
            payloads=PayloadRoutes(ctx.store),
            listen=ListenRoutes(ctx.store, ctx.broker, settings),
            monitors=MonitorRoutes(ctx.store, monitor_changes, ping_cache, base_url, self.clock, badges.forget),
            api_keys=ApiKeyRoutes(ctx.store, auth),
            console=ConsoleSessions(
                ctx.store,
                auth,
                settings.console_session_idle_seconds,
                lambda request: base_url(request).startswith("https://"),
            ),
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
    """The admin wing's: an admin console session or the admin token, or a 401 (403 while the admin API is off)."""
    if _routed(request) and not await request[PARTS].console.admin(request):
        request[PARTS].auth.require_admin(request)
    return await handler(request)


@web.middleware
async def tenant_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The tenant API's: the calling tenant, found by its console session or API key, on the request as
    `TENANT`; or a 401."""
    if _routed(request):
        parts = request[PARTS]
        request[TENANT] = await parts.console.tenant(request) or await parts.auth.tenant(request)
        logs.bind(tenant_id=request[TENANT]["_id"])
    return await handler(request)


def path_alias_routes(root_path: str) -> Middleware:
    """The root app's last: a request no route matched may be for a source's path alias
    (`receiving/path_aliases.py`), so a real route always wins over an alias."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _routed(request) or (found := path_aliases.split(request.path, root_path)) is None:
            return await handler(request)
        parts = request.config_dict[INGEST].parts
        if parts is None:
            if found[1] == path_aliases.HEALTH:
                return path_aliases.health(ready=False)
            raise ApiError(503, "starting", "the service is starting; retry shortly", headers={"Retry-After": "1"})
        return await parts.receiver.aliased(request, *found)

    return middleware


def to(pick: Callable[[Parts], Handler]) -> Handler:
    """A route's handler: the method `pick` names on the parts the gate put on the request."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await pick(request[PARTS])(request)

    return handler


@dataclass(frozen=True)
class Wing:
    """A group of operations under one prefix, behind the same middlewares and the same caller check."""

    prefix: str
    access: Access
    middlewares: tuple[Middleware, ...]
    operations: Sequence[Operation]
    #: Called on each of the wing's answers as it is sent (aiohttp's `on_response_prepare`).
    on_response: tuple[Callable[[web.Request, web.StreamResponse], Awaitable[None]], ...] = ()

    def app(self) -> web.Application:
        app = web.Application(middlewares=self.middlewares)
        app.add_routes(op.route() for op in self.operations)
        app.on_response_prepare.extend(self.on_response)
        return app


def op(
    method: str, path: str, pick: Callable[[Parts], Handler], summary: str, answers: Mapping, **declared: Any
) -> Operation:
    """A line of the route table: the handler `pick` names, documented by `answers` and `declared`."""
    return Operation(method, path, to(pick), summary, answers, **declared)


def old_name(operation: Operation) -> Operation:
    """The same operation under `/v1/messages`, received events' deprecated name (docs/api.md#glossary):
    answered alike, with `Deprecation` and a link to the new path, and its old error code."""
    handler = renamed(operation.handler, "/messages", "/received-events", {"unknown_event": "unknown_message"})
    path = operation.path.replace("/received-events", "/messages", 1)
    return replace(operation, path=path, handler=handler, deprecated=True, summary=operation.summary + " (old name)")


def tagged(tag: str, *operations: Operation) -> tuple[Operation, ...]:
    """Operations on one resource, grouped under its name in the document and the reference page."""
    return tuple(replace(operation, tag=tag) for operation in operations)


async def serve_document(request: web.Request) -> web.StreamResponse:
    return await request.config_dict[REFERENCE].serve_document(request)


async def serve_page(request: web.Request) -> web.StreamResponse:
    return await request.config_dict[REFERENCE].serve_page(request)


TEXT: dict[str, dict] = {"text/plain": {"schema": {"type": "string"}}}
HTML: dict[str, dict] = {"text/html": {"schema": {"type": "string"}}}
#: A provider's body: JSON (also `application/*+json`), a form (also multipart), or text.
ANY_BODY: dict[str, dict] = {
    "application/json": {"schema": {"type": "object"}},
    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    "text/plain": {"schema": {"type": "string"}},
}
WEBSOCKET = {101: None}
LISTEN = (
    "A WebSocket (`GET` with `Upgrade: websocket`; 101 Switching Protocols): JSON frames of what arrives, "
    "as `hookyard listen` reads them (docs/local-development.md)."
)

REFERENCE_DOCUMENT = Wing(
    "/v1/openapi.json",
    Access.public,
    (),
    [Operation("GET", "", serve_document, "This document (OpenAPI 3.1)", {200: {"application/json": {}}})],
)
REFERENCE_PAGE = Wing(
    "/v1/docs", Access.public, (), [Operation("GET", "", serve_page, "The API reference, as a page", {200: HTML})]
)
RECEIVING = Wing(
    "/in",
    Access.public,
    (readiness_gate,),
    [
        *tagged(
            "receiving",
            op(
                "POST",
                "/{source_id}",
                lambda p: p.receiver.post,
                "A provider's webhook, verified by the source's provider",
                {200: {"application/json": {"schema": resources.Received}, **TEXT}},
                description="Answered `{id, status}` once the message is durable, or the provider's own reply "
                "(TwiML, Slack's challenge) as text.",
                errors=(400, 401, 403, 404, 413, 415, 429),
                body_media=ANY_BODY,
            ),
            op(
                "GET",
                "/{source_id}",
                lambda p: p.receiver.get,
                "A provider's subscription handshake (Meta's `hub.challenge`)",
                {200: TEXT},
                errors=(403, 404, 405, 429),
                query=parameters.HandshakeQuery,
                allow_head=False,
            ),
        ),
    ],
)
_PING: dict[str, Any] = {
    "answers": {200: resources.PingAccepted},
    "errors": (400, 401, 404, 413, 415, 429),
    "query": parameters.PingQuery,
    "tag": "pings",
}
#: A POSTed ping may carry its status and message in a JSON body, or a body a payload mapping reads.
_PING_POST = {**_PING, "body_media": ANY_BODY}
# `{status}` is the ping's kind; the name is kept from when it was only a status (generated clients use it).
_PING_KIND = "A ping of a kind: up, down, degraded, start, fail, log, or an exit status 0-255"
_BY_SLUG = (
    "With the tenant's ping key (`pk_...`) in place of a token, the second segment is a monitor's slug "
    "and the ping a heartbeat: `/ping/{ping_key}/{slug}` (docs/monitors.md#pings-by-slug)."
)
PINGS = Wing(
    "/ping",
    Access.token,
    (readiness_gate,),
    [
        op("GET", "/{token}", lambda p: p.pings.ping, "A heartbeat (or a status by query)", **_PING),
        op("POST", "/{token}", lambda p: p.pings.ping, "A heartbeat, or a status by query or body", **_PING_POST),
        op("GET", "/{token}/{status}", lambda p: p.pings.ping, _PING_KIND, description=_BY_SLUG, **_PING),
        op("POST", "/{token}/{status}", lambda p: p.pings.ping, _PING_KIND, description=_BY_SLUG, **_PING_POST),
        op("GET", "/{ping_key}/{slug}/{status}", lambda p: p.pings.ping, "A ping by slug, of a kind", **_PING),
        op("POST", "/{ping_key}/{slug}/{status}", lambda p: p.pings.ping, "A ping by slug, of a kind", **_PING_POST),
    ],
)
_SEED_PING: dict[str, Any] = {**_PING, "answers": {200: resources.SeedPingAccepted}}
SEED_PINGS = Wing(
    "/webhooks",
    Access.token,
    (readiness_gate,),
    [
        op(
            "POST",
            "/{token}",
            lambda p: p.pings.seed_ping,
            "A status push at seed 004's URL: `POST /ping/{token}`",
            body_media=ANY_BODY,
            **_SEED_PING,
        ),
        op(
            "GET",
            "/{token}/heartbeat",
            lambda p: p.pings.seed_ping,
            "A heartbeat at seed 004's URL: `GET /ping/{token}`",
            **_SEED_PING,
        ),
    ],
)
_BADGE: dict[str, Any] = {"errors": (404, 429), "tag": "pings"}
BADGES = Wing(
    "/badge",
    Access.token,
    (readiness_gate,),
    [
        op(
            "GET",
            "/{badge_key}.svg",
            lambda p: p.badges.svg,
            "A monitor's state as a badge",
            {200: {"image/svg+xml": {"schema": {"type": "string"}}}},
            **_BADGE,
        ),
        op("GET", "/{badge_key}.json", lambda p: p.badges.json, "A monitor's state", {200: resources.Badge}, **_BADGE),
    ],
)
TENANTS = Wing(
    "/v1/tenants",
    Access.admin,
    (readiness_gate, admin_auth),
    [
        op(
            "POST",
            "",
            lambda p: p.tenants.create,
            "Make a tenant and its API key",
            {201: resources.TenantCreated},
            body=TenantCreate,
            example={"name": "acme"},
        ),
        op(
            "GET",
            "",
            lambda p: p.tenants.list,
            "The tenants, newest first",
            {200: resources.Page[resources.Tenant]},
            query=parameters.PageQuery,
        ),
        op("GET", "/{tenant_id}", lambda p: p.tenants.get, "A tenant", {200: resources.Tenant}, errors=(404,)),
        op(
            "DELETE",
            "/{tenant_id}",
            lambda p: p.tenants.delete,
            "Delete a tenant and everything it owns",
            {200: resources.TenantDeleted},
            errors=(404,),
        ),
        op(
            "POST",
            "/{tenant_id}/disable",
            lambda p: p.tenants.disable,
            "Disable a tenant: its API calls, webhooks and deliveries stop",
            {200: resources.Tenant},
            errors=(404,),
        ),
        op(
            "POST",
            "/{tenant_id}/enable",
            lambda p: p.tenants.enable,
            "Enable a disabled tenant",
            {200: resources.Tenant},
            errors=(404,),
        ),
    ],
)
ADMIN = Wing(
    "/v1/admin",
    Access.admin,
    (readiness_gate, admin_auth),
    [
        op(
            "GET",
            "/overview",
            lambda p: p.overview.get,
            "The platform at a glance: queues, parked messages, dead letters per tenant, services' readiness",
            {200: resources.Overview},
            tag="operator",
        ),
        op(
            "GET",
            "/parked",
            lambda p: p.parked.list,
            "Messages parked in hookyard.invalid",
            {200: resources.ParkedList},
            query=parameters.ParkedQuery,
        ),
        op(
            "POST",
            "/parked/redrive",
            lambda p: p.parked.redrive_all,
            "Send every parked message back",
            {202: resources.Redriven},
        ),
        op(
            "GET",
            "/parked/{key}",
            lambda p: p.parked.get,
            "A parked message",
            {200: resources.ParkedDetail},
            errors=(404,),
        ),
        op(
            "POST",
            "/parked/{key}/redrive",
            lambda p: p.parked.redrive,
            "Send a parked message back",
            {202: resources.Redriven},
            errors=(404,),
        ),
    ],
)

RECEIVED_EVENTS = (
    op(
        "GET",
        "/received-events",
        lambda p: p.messages.list,
        "Search the events providers sent through sources",
        {200: resources.Page[resources.Message]},
        query=parameters.ReceivedEventQuery,
    ),
    op(
        "GET",
        "/received-events/{event_id}",
        lambda p: p.messages.get,
        "A received event, with its headers and body",
        {200: resources.MessageDetail},
        errors=(404,),
    ),
    op(
        "GET",
        "/received-events/{event_id}/attempts",
        lambda p: p.messages.attempts,
        "A received event's attempts, oldest first",
        {200: resources.Page[resources.Attempt]},
        query=parameters.PageQuery,
    ),
    op(
        "POST",
        "/received-events/{event_id}/resend",
        lambda p: p.messages.resend,
        "Deliver a received event again",
        {202: resources.Requeued},
        body=Resend,
        errors=(404, 409),
    ),
    op(
        "DELETE",
        "/received-events/{event_id}/payload",
        lambda p: p.payloads.erase,
        "Erase a received event's payload everywhere it is stored, keeping its metadata",
        {200: resources.Erased},
        errors=(404,),
    ),
)

# Under the admin wings' prefixes, which aiohttp tries first (the longest prefix wins).
TENANT_API = Wing(
    "/v1",
    Access.tenant,
    (readiness_gate, tenant_auth),
    [
        *tagged(
            "sources",
            op(
                "POST",
                "/sources",
                lambda p: p.sources.create,
                "Make a source",
                {201: resources.SourceCreated},
                body=SourceCreate,
                example={"name": "payments", "provider": "stripe", "secrets": ["whsec_..."]},
            ),
            op(
                "GET",
                "/sources",
                lambda p: p.sources.list,
                "The sources",
                {200: resources.Page[resources.Source]},
                query=parameters.PageQuery,
            ),
            op(
                "GET",
                "/sources/{source_id}",
                lambda p: p.sources.get,
                "A source",
                {200: resources.Source},
                errors=(404,),
            ),
            op(
                "GET",
                "/sources/{source_id}/stats",
                lambda p: p.sources.stats,
                "A source's last message and refused signatures",
                {200: resources.SourceStats},
                errors=(404,),
            ),
            op(
                "PATCH",
                "/sources/{source_id}",
                lambda p: p.sources.update,
                "Change a source",
                {200: resources.Source},
                body=SourceFields,
                errors=(404,),
            ),
            op(
                "DELETE",
                "/sources/{source_id}",
                lambda p: p.sources.delete,
                "Delete a source",
                {204: None},
                errors=(404,),
            ),
        ),
        *tagged(
            "events",
            op(
                "POST",
                "/events",
                lambda p: p.events.create,
                "Publish an event",
                {202: resources.EventAccepted},
                body=EventCreate,
                example={"event_type": "order.created", "payload": {"order_id": "o_1"}, "severity": "low"},
            ),
        ),
        *tagged(
            "endpoints",
            op(
                "POST",
                "/endpoints",
                lambda p: p.endpoints.create,
                "Make an endpoint",
                {201: resources.EndpointCreated},
                body=EndpointCreate,
                example={"url": "https://example.com/hooks", "event_types": ["order.*"]},
            ),
            op(
                "POST",
                "/endpoints/import",
                lambda p: p.endpoint_import.post,
                "Make an endpoint from seed 001's tenant configuration, saying what became of each field",
                {201: resources.EndpointImported},
                body=SeedConfig,
                example={
                    "base_url": "https://api.example.com/webhooks",
                    "secret_key": "super-secret-key-123",
                    "enabled_events": ["user.*"],
                    "auth_config": {"auth_type": "Bearer", "token": "sk_live_123456789"},
                },
            ),
            op(
                "GET",
                "/endpoints",
                lambda p: p.endpoints.list,
                "The endpoints",
                {200: resources.Page[resources.Endpoint]},
                query=parameters.PageQuery,
            ),
            op(
                "GET",
                "/endpoints/{endpoint_id}",
                lambda p: p.endpoints.get,
                "An endpoint",
                {200: resources.Endpoint},
                errors=(404,),
            ),
            op(
                "GET",
                "/endpoints/{endpoint_id}/secret",
                lambda p: p.endpoints.secret,
                "An endpoint's signing secret",
                {200: resources.EndpointSigningSecret},
                errors=(404,),
            ),
            op(
                "PATCH",
                "/endpoints/{endpoint_id}",
                lambda p: p.endpoints.update,
                "Change an endpoint",
                {200: resources.Endpoint},
                body=EndpointFields,
                errors=(404,),
            ),
            op(
                "DELETE",
                "/endpoints/{endpoint_id}",
                lambda p: p.endpoints.delete,
                "Delete an endpoint",
                {204: None},
                errors=(404,),
            ),
            op(
                "POST",
                "/endpoints/{endpoint_id}/rotate-secret",
                lambda p: p.endpoints.rotate,
                "Rotate an endpoint's secret, the old one signing beside it for a grace period",
                {200: resources.EndpointRotated},
                body=Rotation,
                errors=(404,),
            ),
            op(
                "GET",
                "/endpoints/{endpoint_id}/stats",
                lambda p: p.metrics.endpoint_series,
                "An endpoint's attempts, success rate and latency over time, in equal slices",
                {200: resources.EndpointStats},
                query=parameters.EndpointStatsQuery,
                errors=(404,),
            ),
        ),
        *tagged(
            "events",
            op(
                "GET",
                "/events",
                lambda p: p.event_log.list,
                "Search the tenant's own events",
                {200: resources.Page[resources.OwnEventSummary]},
                query=parameters.EventQuery,
            ),
            op(
                "GET",
                "/events/{event_id}",
                lambda p: p.event_log.get,
                "An own event, with its delivery status",
                {200: resources.OwnEvent},
                errors=(404,),
            ),
            op(
                "GET",
                "/events/{event_id}/attempts",
                lambda p: p.event_log.attempts,
                "An event's attempts (own or received), oldest first",
                {200: resources.Page[resources.Attempt]},
                query=parameters.PageQuery,
            ),
            op(
                "POST",
                "/events/{event_id}/resend",
                lambda p: p.messages.resend,
                "Deliver an event (own or received) again",
                {202: resources.Requeued},
                body=Resend,
                errors=(404, 409),
            ),
            op(
                "DELETE",
                "/events/{event_id}/payload",
                lambda p: p.payloads.erase,
                "Erase an event's payload (own or received) everywhere it is stored, keeping its metadata",
                {200: resources.Erased},
                errors=(404,),
            ),
        ),
        *tagged("received events", *RECEIVED_EVENTS),
        *tagged("received events", *(old_name(operation) for operation in RECEIVED_EVENTS)),
        *tagged(
            "metrics",
            op(
                "GET",
                "/metrics",
                lambda p: p.metrics.get,
                "Delivery figures, overall and per endpoint",
                {200: resources.DeliveryMetrics},
                query=parameters.MetricsQuery,
            ),
        ),
        *tagged(
            "dead letters",
            op(
                "GET",
                "/dead-letters",
                lambda p: p.dead_letters.list,
                "What could not be delivered",
                {200: resources.Page[resources.DeadLetter]},
                query=parameters.DeadLetterQuery,
            ),
            op(
                "POST",
                "/dead-letters/replay",
                lambda p: p.dead_letters.replay,
                "Replay the dead letters of a time window",
                {202: resources.ReplayStarted},
                body=BulkReplay,
                example={"since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00Z"},
            ),
            op(
                "GET",
                "/dead-letters/replays/{replay_id}",
                lambda p: p.dead_letters.progress,
                "A bulk replay's progress",
                {200: resources.ReplayProgress},
                errors=(404,),
            ),
            op(
                "GET",
                "/dead-letters/{message_id}",
                lambda p: p.dead_letters.get,
                "A dead letter, with its event and attempts",
                {200: resources.DeadLetterDetail},
                errors=(404,),
            ),
            op(
                "POST",
                "/dead-letters/{message_id}/retry",
                lambda p: p.dead_letters.retry,
                "Replay one dead letter",
                {202: resources.Replaying},
                errors=(404, 409),
            ),
        ),
        *tagged(
            "listen",
            op(
                "GET",
                "/sources/{source_id}/listen",
                lambda p: p.listen.source,
                "Stream a source's messages (`hookyard listen`)",
                WEBSOCKET,
                description=LISTEN,
                query=parameters.ListenQuery,
                errors=(404, 429),
                websocket=True,
            ),
            op(
                "GET",
                "/endpoints/{endpoint_id}/listen",
                lambda p: p.listen.endpoint,
                "Stream an endpoint's deliveries (`hookyard listen`)",
                WEBSOCKET,
                description=LISTEN,
                query=parameters.ListenQuery,
                errors=(404, 429),
                websocket=True,
            ),
        ),
        *tagged(
            "monitors",
            op(
                "POST",
                "/monitors",
                lambda p: p.monitors.create,
                "Make a monitor and its ping URL",
                {201: resources.Monitor},
                body=MonitorCreate,
                example={
                    "name": "nightly backup",
                    "schedule": "0 3 * * *",
                    "tz": "Europe/Lisbon",
                    "grace_seconds": 600,
                },
            ),
            op(
                "GET",
                "/monitors",
                lambda p: p.monitors.list,
                "The monitors",
                {200: resources.Page[resources.Monitor]},
                query=parameters.MonitorQuery,
            ),
            op(
                "GET",
                "/monitors/{monitor_id}",
                lambda p: p.monitors.get,
                "A monitor",
                {200: resources.Monitor},
                errors=(404,),
            ),
            op(
                "PATCH",
                "/monitors/{monitor_id}",
                lambda p: p.monitors.update,
                "Change a monitor",
                {200: resources.Monitor},
                body=MonitorFields,
                errors=(404, 409),
            ),
            op(
                "DELETE",
                "/monitors/{monitor_id}",
                lambda p: p.monitors.delete,
                "Delete a monitor",
                {204: None},
                errors=(404,),
            ),
            op(
                "POST",
                "/monitors/{monitor_id}/pause",
                lambda p: p.monitors.pause,
                "Pause a monitor",
                {200: resources.Monitor},
                errors=(404, 409),
            ),
            op(
                "POST",
                "/monitors/{monitor_id}/resume",
                lambda p: p.monitors.resume,
                "Resume a paused monitor",
                {200: resources.Monitor},
                errors=(404, 409),
            ),
            op(
                "POST",
                "/monitors/{monitor_id}/regenerate-token",
                lambda p: p.monitors.regenerate_token,
                "Give a monitor a new ping token (the old URL stops working)",
                {200: resources.Monitor},
                errors=(404,),
            ),
            op(
                "POST",
                "/monitors/{monitor_id}/regenerate-badge-key",
                lambda p: p.monitors.regenerate_badge_key,
                "Give a monitor a new badge key (the old badge URL stops working)",
                {200: resources.Monitor},
                errors=(404,),
            ),
            op(
                "GET",
                "/ping-key",
                lambda p: p.ping_keys.get,
                "The tenant's ping key, for pings by slug",
                {200: resources.PingKey},
                errors=(404,),
            ),
            op(
                "POST",
                "/ping-key",
                lambda p: p.ping_keys.replace,
                "Make the tenant's ping key, or replace it (the old one stops working)",
                {201: resources.PingKey},
            ),
            op(
                "GET",
                "/monitors/{monitor_id}/checks",
                lambda p: p.monitors.checks,
                "A monitor's pings, as recorded",
                {200: resources.Page[resources.Check]},
                query=parameters.WindowQuery,
                errors=(404,),
            ),
            op(
                "GET",
                "/monitors/{monitor_id}/flips",
                lambda p: p.monitors.flips,
                "A monitor's state changes",
                {200: resources.Page[resources.Flip]},
                query=parameters.WindowQuery,
                errors=(404,),
            ),
            op(
                "GET",
                "/monitors/{monitor_id}/incidents",
                lambda p: p.monitors.incidents,
                "A monitor's incidents",
                {200: resources.Page[resources.Incident]},
                query=parameters.IncidentQuery,
                errors=(404,),
            ),
            op(
                "GET",
                "/monitors/{monitor_id}/stats",
                lambda p: p.monitors.stats,
                "A monitor's uptime, incident count and run durations",
                {200: resources.MonitorStats},
                errors=(404,),
            ),
        ),
        *tagged(
            "api keys",
            op(
                "POST",
                "/api-keys",
                lambda p: p.api_keys.create,
                "Make a named API key (shown once)",
                {201: resources.ApiKeyCreated},
                body=KeyCreate,
                example={"name": "ci"},
                errors=(409,),
            ),
            op(
                "GET",
                "/api-keys",
                lambda p: p.api_keys.list,
                "The tenant's API keys that still work (prefix and times only)",
                {200: resources.Page[resources.ApiKey]},
                query=parameters.PageQuery,
            ),
            op(
                "DELETE",
                "/api-keys/{key_id}",
                lambda p: p.api_keys.revoke,
                "Revoke an API key",
                {204: None},
                errors=(404, 409),
            ),
            op(
                "POST",
                "/api-keys/{key_id}/rotate",
                lambda p: p.api_keys.rotate,
                "A new key for this one, the old one working until `expire_in_seconds` from now",
                {201: resources.ApiKeyCreated},
                body=KeyRotate,
                errors=(404, 409),
            ),
        ),
    ],
)
CONSOLE_SESSION = Wing(
    "/console/session",
    Access.public,
    (readiness_gate,),
    tagged(
        "console",
        op(
            "POST",
            "",
            lambda p: p.console.open,
            "Sign in to the console: a session cookie for a tenant's API key or the admin token",
            {200: resources.ConsoleSession},
            description="Answers the session and sets the `hookyard_console` cookie (HttpOnly, SameSite=Strict; "
            "its token is not the key). Cookie calls to the API that are not GET or HEAD must send the session's "
            "`csrf` as `X-CSRF-Token` (docs/console.md).",
            body=SignIn,
            errors=(400, 401, 403, 415),
        ),
        op(
            "GET",
            "",
            lambda p: p.console.read,
            "The console session the cookie holds",
            {200: resources.ConsoleSession},
            errors=(401,),
        ),
        op(
            "PUT",
            "",
            lambda p: p.console.act,
            "An admin session acts as a tenant (or, with null, stops)",
            {200: resources.ConsoleSession},
            body=ActAs,
            example={"tenant_id": None},
            errors=(400, 401, 403, 404),
        ),
        op(
            "DELETE",
            "",
            lambda p: p.console.close,
            "Sign out of the console (answered alike without a session)",
            {204: None},
            errors=(403,),
        ),
    ),
    on_response=(shell.secure,),
)
WINGS = (
    REFERENCE_DOCUMENT,
    REFERENCE_PAGE,
    RECEIVING,
    PINGS,
    SEED_PINGS,
    BADGES,
    TENANTS,
    ADMIN,
    TENANT_API,
    CONSOLE_SESSION,
)


def openapi_document(root_path: str = "") -> dict[str, Any]:
    """The contract of every wing, its paths below `root_path` (`python -m hookyard_ingest.spec` prints it)."""
    return document.build(WINGS, root_path or "/")


def mount_wings(app: web.Application) -> None:
    for wing in WINGS:
        app.add_subapp(wing.prefix, wing.app())
    app.add_subapp("/console", shell.app())  # the page and its files: not the API, so not in its document


def create_app(settings: Settings, clock: Callable[[], datetime] = utcnow) -> web.Application:
    ingest = Ingest(settings, clock)
    intake = BodyIntake(
        settings.http_read_timeout_seconds, BodyBudget(settings.body_budget_bytes), settings.body_budget_wait_seconds
    )
    app = web.Application(
        middlewares=[
            trace_requests,
            scope_logs,
            *access_log.middlewares(settings.access_log),
            count_responses,
            json_errors,
            require_text_headers,
            intake.middleware,
            path_alias_routes(settings.root_path),
        ],
        client_max_size=API_BODY_LIMIT,
    )
    app[INTAKE] = intake
    app[INGEST] = ingest
    app[REFERENCE] = Reference.of(openapi_document(settings.root_path))
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
