"""`POST /v1/events`: a tenant publishes an event over HTTP.

It is validated into the same `Event` schema tenants use on the broker and
published onto the same exchange, so both ways lead to the same pipeline.
The payload and context were read by `json_input`, so an event accepted here
can always be encoded for the broker and stored by the dispatcher: a value
that could not is a 400 now, not a 503 the client would retry forever.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.delivery.endpoints import CustomHeaders
from hookyard_common.operational_events import OPERATIONAL
from hookyard_common.schemas import Event, EventType, Identifier, Severity, UtcDatetime
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import parse_body


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: EventType
    payload: Any
    idempotency_key: str | None = Field(None, max_length=256)
    severity: Severity | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    target_endpoint_id: Identifier | None = None
    headers: CustomHeaders = Field(default_factory=dict)
    occurred_at: UtcDatetime | None = None

    @field_validator("context")
    @classmethod
    def _not_operational(cls, context: dict[str, Any]) -> dict[str, Any]:
        # The flag of Hookyard's own operational events: a tenant's event may not pose as one.
        if OPERATIONAL in context:
            raise ValueError(f"context.{OPERATIONAL} is reserved for Hookyard's own events")
        return context


class EventRoutes:
    def __init__(self, broker: Broker):
        self.broker = broker

    async def create(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        body: EventCreate = await parse_body(request, EventCreate)
        fields = body.model_dump(exclude_none=True)
        event = Event(tenant_id=tenant["_id"], **fields)
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
        return web.json_response(
            {"id": event.id, "event_type": event.event_type, "occurred_at": event.occurred_at.isoformat()},
            status=202,
        )
