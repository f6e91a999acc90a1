"""`POST /v1/events`: a tenant publishes an event over HTTP.

It is validated into the same `Event` schema tenants use on the broker and
published onto the same exchange, so both ways lead to the same pipeline.
The payload and context were read by `json_input`, so an event accepted here
can always be encoded for the broker and stored by the dispatcher: a value
that could not is a 400 now, not a 503 the client would retry forever.

With an idempotency key (the `Idempotency-Key` header or the body's
`idempotency_key`) the key is claimed in MongoDB before the publish
(records/idempotency_keys.py): a retry of the same request is answered as
the first was, with `Idempotent-Replayed: true`, and published no more; the
same key with another body is a 409. Only keyed requests touch MongoDB: a
client that opts in gets a 503 while it is down, everyone else is answered
from the broker's confirm alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator
from pymongo.errors import PyMongoError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core import logs
from hookyard_common.core.settings import Settings
from hookyard_common.delivery.endpoints import CustomHeaders
from hookyard_common.delivery.ssrf import DestinationPolicy, vet_url
from hookyard_common.operational_events import OPERATIONAL
from hookyard_common.records.idempotency_keys import ACCEPTED, Contended, Holder, IdempotencyKeys
from hookyard_common.schemas import Event, EventType, Identifier, Severity, UtcDatetime
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import parse_body

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The longest key, in the header as in the body (the broker's `idempotency_key` allows as much).
MAX_KEY_LENGTH = 256
#: How long a repeat waits for the first request of its key to be answered, polling this often,
#: before it is told to retry (409 `idempotency_in_progress`): a publish normally takes milliseconds.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05
#: How much longer than the broker's confirm timeout a pending claim is trusted: past it, the
#: replica that made it is taken for dead and a retry may publish instead.
LEASE_MARGIN_SECONDS = 20.0
#: The longest `target_url` (as an endpoint's URL).
MAX_URL_LENGTH = 2048


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(
        None, max_length=256, description="Ignored (seed 001's requests carry it): the API key names the tenant."
    )
    event_type: EventType
    payload: Any
    idempotency_key: str | None = Field(None, min_length=1, max_length=MAX_KEY_LENGTH)
    severity: Severity | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    target_endpoint_id: Identifier | None = None
    target_url: AnyHttpUrl | None = Field(
        None, description="Deliver once, to this URL instead of the endpoint's (seed 001's override)."
    )
    headers: CustomHeaders = Field(default_factory=dict)
    custom_headers: CustomHeaders | None = Field(None, description="Seed 001's name for `headers`.")
    occurred_at: UtcDatetime | None = None

    @field_validator("target_url")
    @classmethod
    def _url_length(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and len(str(value)) > MAX_URL_LENGTH:
            raise ValueError(f"target_url must be at most {MAX_URL_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _one_headers_name(self) -> EventCreate:
        # One request, one fingerprint, whichever name the client used.
        if self.custom_headers is not None:
            if self.headers:
                raise ValueError("give headers or custom_headers (its other name), not both")
            self.headers, self.custom_headers = self.custom_headers, None
        return self

    @field_validator("context")
    @classmethod
    def _not_operational(cls, context: dict[str, Any]) -> dict[str, Any]:
        # The flag of Hookyard's own operational events: a tenant's event may not pose as one.
        if OPERATIONAL in context:
            raise ValueError(f"context.{OPERATIONAL} is reserved for Hookyard's own events")
        return context


def fingerprint(body: EventCreate) -> str:
    """SHA-256 of the request's canonical form: its fields as validated, keys sorted, without
    the key itself (so the header and the body field name the same request)."""
    # Fields added later count only when given, so a retry across an upgrade matches its first request.
    later = {"custom_headers", *(name for name in ("tenant_id", "target_url") if getattr(body, name) is None)}
    fields = body.model_dump(mode="json", exclude={"idempotency_key", *later})
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def idempotency_key(request: web.Request, body: EventCreate) -> str | None:
    """The request's key: the header's or the body's, which must agree when both are given."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None:
        return body.idempotency_key
    if not 1 <= len(header) <= MAX_KEY_LENGTH:
        message = f"the {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} characters"
        raise ApiError(400, "invalid_idempotency_key", message, field=IDEMPOTENCY_HEADER)
    if body.idempotency_key is not None and body.idempotency_key != header:
        message = f"the {IDEMPOTENCY_HEADER} header and the body's idempotency_key differ; give one, or the same"
        raise ApiError(400, "idempotency_key_mismatch", message, field=IDEMPOTENCY_HEADER)
    return header


def replayed(holder: Holder, fingerprint: str) -> web.Response | None:
    """The first answer for a repeat of its request; None while the first is still publishing;
    a 409 for another request under the same key."""
    if holder.fingerprint is None:
        message = "this idempotency key was used within its window by an event published on the broker"
        raise ApiError(409, "idempotency_conflict", message, event_id=holder.event_id)
    if holder.fingerprint != fingerprint:
        message = "this idempotency key was used within its window for a different request body"
        raise ApiError(409, "idempotency_conflict", message, event_id=holder.event_id)
    if holder.state != ACCEPTED or holder.answer is None:
        return None
    return web.json_response(holder.answer, status=202, headers={"Idempotent-Replayed": "true"})


class EventRoutes:
    def __init__(self, broker: Broker, store: Store, settings: Settings):
        self.broker = broker
        self.policy = DestinationPolicy(settings.delivery_allowed_cidrs)
        lease = timedelta(seconds=settings.publish_timeout_seconds + LEASE_MARGIN_SECONDS)
        self.keys = IdempotencyKeys(store, timedelta(hours=settings.idempotency_window_hours), lease)

    async def create(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        body: EventCreate = await parse_body(request, EventCreate)
        key = idempotency_key(request, body)
        if body.target_url is not None and (refused := await vet_url(str(body.target_url), self.policy)):
            raise ApiError(400, "destination_not_allowed", refused, field="target_url")
        fields = body.model_dump(mode="json", exclude_none=True, exclude={"custom_headers", "tenant_id"})
        event = Event(tenant_id=tenant["_id"], **fields | {"idempotency_key": key})
        logs.bind(event_id=event.id)
        answer = {"id": event.id, "event_type": event.event_type, "occurred_at": event.occurred_at.isoformat()}
        if key is None:
            await self.publish(event)
            return web.json_response(answer, status=202)
        return await self.create_once(event, key, fingerprint(body), answer)

    async def create_once(self, event: Event, key: str, fingerprint: str, answer: dict) -> web.Response:
        """Publish `event` under its key unless a request already did: then answer as it was answered."""
        tenant_id = event.tenant_id
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        try:
            while (holder := await self.keys.claim(tenant_id, key, fingerprint, event.id, answer)) is not None:
                if (response := replayed(holder, fingerprint)) is not None:
                    return response
                if asyncio.get_running_loop().time() >= deadline:
                    raise _in_progress()
                await asyncio.sleep(POLL_SECONDS)
        except Contended:
            raise _in_progress() from None
        try:
            await self.publish(event)
        except (ApiError, asyncio.CancelledError):  # not published, as far as we know: a retry may publish
            await self._release(tenant_id, key, event.id)
            raise
        try:
            accepted = await self.keys.accept(tenant_id, key, event.id)
        except PyMongoError:
            # The event is durable: the dispatcher marks the claim accepted when it takes it in.
            log.warning("idempotency claim left pending", extra={"event_id": event.id}, exc_info=True)
            accepted = True
        if not accepted:
            # Taken over while this publish outlasted the lease: the dispatcher delivers the holder's event only.
            raise _in_progress()
        return web.json_response(answer, status=202)

    async def _release(self, tenant_id: str, key: str, event_id: str) -> None:
        try:
            await self.keys.release(tenant_id, key, event_id)
        except PyMongoError:  # the lease frees it instead
            log.warning("idempotency claim not released", extra={"event_id": event_id}, exc_info=True)

    async def publish(self, event: Event) -> None:
        try:
            await self.broker.publish(
                event.to_bytes(),
                routing_key=topology.routing_key(event.tenant_id, event.event_type),
                message_id=event.id,
            )
        except Exception:
            raise ApiError(
                503, "unavailable", "could not store the event; retry later", headers={"Retry-After": "5"}
            ) from None


def _in_progress() -> ApiError:
    message = "a request with this idempotency key is still being handled; retry shortly"
    return ApiError(409, "idempotency_in_progress", message, headers={"Retry-After": "1"})
