"""`/in/{source_id}`: a provider's webhook in — checked, limited, verified, made durable.

The order is cheapest refusal first: unknown source (a lookup only within the
caller's failure budget), rate limits, sender IP, media type, body size (while
reading), parsing, signature, payload schema.
A 2xx is answered only after the broker confirmed the event, so accepted
means durable. The hot path does not wait on the database per request:
sources are cached, rate limits spend tokens leased in batches (and count
alone when MongoDB is down, see `rate_leases`), and the dispatcher writes
the message log (and drops provider retries) as it takes the events from
the broker. Only a refused signature is written down at once (counted on
its source for the tenant to see), and never waited on for more than
COUNT_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiohttp import web
from pymongo.errors import PyMongoError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core import json_path, logs, metric_labels
from hookyard_common.core.settings import Settings
from hookyard_common.records import sources
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge import bodies, metrics
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import (
    FailureThrottle,
    client_ip,
    client_key,
    in_networks,
    parse_networks,
)
from hookyard_ingest.edge.rate_leases import LeasedLimiter, enforce_edge
from hookyard_ingest.edge.urls import request_url
from hookyard_ingest.receiving import inbound_event, path_aliases
from hookyard_ingest.receiving.path_aliases import AliasCache
from hookyard_ingest.receiving.providers import InboundRequest, Reply, VerificationError
from hookyard_ingest.receiving.providers.event_naming import dedup_key
from hookyard_ingest.receiving.sources import Source, SourceCache

log = logging.getLogger(__name__)

# Headers that carry the sender's credentials, not the message: never stored or relayed.
REDACTED_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
#: The longest a sender's 401 waits on counting it (a database outage must not hold it up).
COUNT_TIMEOUT_SECONDS = 1.0


class Receiver:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        cache: SourceCache,
        broker: Broker,
        limiter: LeasedLimiter,
        failures: FailureThrottle,
        aliases: AliasCache,
    ):
        self.settings = settings
        self.aliases = aliases
        self.store = store
        self.cache = cache
        self.broker = broker
        self.limiter = limiter
        self.failures = failures
        self.trusted = parse_networks(settings.trusted_proxies)
        self._accepted_metrics: dict[str, tuple] = {}

    def _accepted(self, provider: str) -> tuple:
        """The labelled metrics of accepted requests; looked up once per provider, not per request."""
        found = self._accepted_metrics.get(provider)
        if found is None:
            found = (
                metrics.REQUESTS.labels(provider, "accepted"),
                metrics.ACCEPT_SECONDS.labels(provider),
                metrics.BYTES_IN.labels(provider),
            )
            self._accepted_metrics[provider] = found
        return found

    async def post(self, request: web.Request) -> web.Response:
        return await self.receive(request, request.match_info["source_id"])

    async def aliased(self, request: web.Request, alias: str, what: str) -> web.Response:
        """A request to a source's path alias (path_aliases.py): its webhook, or its health check."""
        source_id = await self.failures.look_up(self.aliases, alias, client_ip(request, self.trusted))
        if source_id is None:
            raise ApiError(404, "not_found", "Not Found")
        allowed = "GET, HEAD" if what == path_aliases.HEALTH else "POST"
        if request.method not in allowed.split(", "):
            raise ApiError(405, "method_not_allowed", "Method Not Allowed", headers={"Allow": allowed})
        if what == path_aliases.HEALTH:
            return path_aliases.health(ready=True)
        return await self.receive(request, source_id)

    async def receive(self, request: web.Request, source_id: str) -> web.Response:
        started = time.perf_counter()
        source: Source | None = None
        try:
            source, ip = await self._admit(request, source_id)
            response = await self._accept(request, source, ip)
        except ApiError as exc:
            provider = source.doc["provider"] if source else ""
            metrics.REQUESTS.labels(provider, exc.code).inc()
            if source is not None:
                metric_labels.count_for_tenant(metric_labels.TENANT_INGEST_REQUESTS, source.doc["tenant_id"], exc.code)
            if exc.code == "invalid_signature" and source is not None:
                metrics.SIGNATURE_FAILURES.labels(provider).inc()
                await self._count_signature_failure(source.id)
            if source is not None and source.enveloped:
                return _enveloped_error(exc)
            raise
        requests, latency, _ = self._accepted(source.doc["provider"])
        requests.inc()
        metric_labels.count_for_tenant(metric_labels.TENANT_INGEST_REQUESTS, source.doc["tenant_id"], "accepted")
        latency.observe(time.perf_counter() - started)
        return response

    async def _count_signature_failure(self, source_id: str) -> None:
        try:
            await asyncio.wait_for(
                sources.count_signature_failure(self.store, source_id, utcnow()), COUNT_TIMEOUT_SECONDS
            )
        except (PyMongoError, TimeoutError):
            log.warning("signature failure not counted", extra={"source_id": source_id}, exc_info=True)

    async def get(self, request: web.Request) -> web.Response:
        """A provider's subscription handshake (Meta's); most providers only POST."""
        source, _ = await self._admit(request, request.match_info["source_id"])
        try:
            reply = source.provider.handshake(request.query, source.doc.get("options") or {})
        except VerificationError as exc:
            raise ApiError(403, "verification_failed", str(exc)) from None
        if reply is None:
            raise ApiError(405, "method_not_allowed", "this source accepts POST only", headers={"Allow": "POST"})
        return _response(reply)

    async def _admit(self, request: web.Request, source_id: str) -> tuple[Source, str]:
        """The source, once the caller passed its rate limits and allow-list; and the caller's IP."""
        ip = client_ip(request, self.trusted)
        source = await self.failures.look_up(self.cache, source_id, ip)
        if source is None:
            raise ApiError(404, "unknown_source", "no such source")
        doc, settings = source.doc, self.settings
        logs.bind(tenant_id=doc["tenant_id"])
        if doc.get("tenant_disabled"):  # 403, not 410: a provider may drop a URL answered 410 for good
            raise ApiError(403, "tenant_disabled", "this source's tenant is disabled")
        await enforce_edge(
            self.limiter,
            f"in:{source.id}",
            "source",
            client_key(ip),
            ceiling=settings.rate_limit_per_ip_total,
            per_client=doc.get("rate_limit_per_ip") or settings.rate_limit_per_ip,
            per_target=doc.get("rate_limit_per_source") or settings.rate_limit_per_source,
        )
        if source.networks and not in_networks(ip, source.networks):
            raise ApiError(403, "sender_not_allowed", f"sender address {ip} is not allowed for this source")
        return source, ip

    async def _accept(self, request: web.Request, source: Source, ip: str) -> web.Response:
        doc = source.doc
        media = bodies.media_type(request)
        bodies.require_supported(media)
        body = await bodies.read_bounded(request, doc.get("max_body_bytes") or self.settings.max_body_bytes)
        json_value, form = bodies.parse(body, media, request.headers.get("Content-Type", ""))
        inbound = InboundRequest(
            method=request.method,
            url=request_url(request, self.settings, self.trusted),
            headers=request.headers,
            body=body,
            media_type=media,
            json=json_value,
            form=form,
            now=time.time(),
        )
        try:
            verified = source.provider.verify(
                inbound, doc.get("secrets") or [], doc.get("options") or {}, self.settings.signature_tolerance_seconds
            )
        except VerificationError as exc:
            log.info("signature refused", extra={"source_id": source.id, "reason": str(exc)})
            raise ApiError(401, "invalid_signature", str(exc)) from None

        early = source.provider.early_reply(inbound)
        if early is not None:  # a check of the endpoint (Slack's challenge): nothing to deliver
            return _response(early)

        dedup_path = doc.get("dedup_path")
        wanted = source.payload_schema is not None or dedup_path is not None
        payload = bodies.payload_of(body, media, json_value, form) if wanted else None
        if source.payload_schema is not None:
            problems = source.payload_schema.problems(payload)
            if problems is not None:
                raise ApiError(400, problems.pop("code"), problems.pop("message"), **problems)

        event_id, event = inbound_event.encode(
            tenant_id=doc["tenant_id"],
            source_id=source.id,
            event_type=verified.event_type,
            provider=doc["provider"],
            method=request.method,
            url=inbound.url,
            headers=[(k, v) for k, v in request.headers.items() if k.lower() not in REDACTED_HEADERS],
            body=body,
            media_type=media,
            client_ip=ip,
            signature_scheme=verified.signature_scheme,
            dedup_key=body_dedup_key(payload, dedup_path) or verified.dedup_key,
        )
        logs.bind(event_id=event_id)
        try:
            await self.broker.publish(
                event, routing_key=topology.routing_key(doc["tenant_id"], verified.event_type), message_id=event_id
            )
        except Exception as exc:
            log.warning("broker refused or unreachable; answering 503", extra={"error": repr(exc)})
            raise ApiError(
                503, "unavailable", "could not store the message; retry later", headers={"Retry-After": "5"}
            ) from None
        self._accepted(doc["provider"])[2].inc(len(body))
        reply = source.provider.accepted_reply()
        if reply is not None:  # what the provider reads back (Twilio's TwiML)
            return _response(reply)
        accepted: dict[str, object] = {"id": event_id, "status": "accepted"}
        if source.enveloped:
            accepted = {"success": True, "message": "accepted", "data": accepted}
        return web.Response(body=orjson.dumps(accepted), content_type="application/json")


def body_dedup_key(payload: object, path: str | None) -> str | None:
    """The dedup key the source's `dedup_path` names in the body (a string or an integer); None without one."""
    if path is None:
        return None
    found = json_path.lookup(payload, path)
    if isinstance(found, bool) or not isinstance(found, str | int):
        return None
    return dedup_key(str(found))


def _response(reply: Reply) -> web.Response:
    return web.Response(text=reply.text, content_type=reply.content_type)


def _enveloped_error(exc: ApiError) -> web.Response:
    """An error in seed 000's envelope, for a source that answers in it: `success` false and the
    message, and the usual `error` object beside them so Hookyard's clients read it as well."""
    body = {
        "success": False,
        "message": exc.message,
        "data": None,
        "error": {"code": exc.code, "message": exc.message, **exc.details},
    }
    return web.json_response(body, status=exc.status, headers=exc.headers)
