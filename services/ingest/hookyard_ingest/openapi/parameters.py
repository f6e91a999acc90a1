"""The query parameters of the API's lists and reads, one model per kind, one field per parameter.

The handlers read their parameters themselves (`edge/request_io.py`: a
refusal names the parameter); these models say the same bounds to the
document, and schemathesis checks that both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from hookyard_common.broker.parked import MAX_SCAN
from hookyard_common.delivery.event_status import Status


class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=100, description="How many items a page holds.")
    cursor: str | None = Field(None, description="The `next_cursor` of the previous page.")


class WindowQuery(PageQuery):
    since: datetime | None = Field(None, description="Only items at or after this time (ISO 8601, with a zone).")
    until: datetime | None = Field(None, description="Only items before this time (ISO 8601, with a zone).")


class EventQuery(WindowQuery):
    # Spelt out: an enum would be a `$ref`, and a query parameter's schema is inline.
    event_type: str | None = Field(None, description="Only this type, or a pattern such as `order.*`.")
    status: Status | None = Field(None, description="Only events in this delivery state (docs/api.md#search).")
    endpoint_id: str | None = Field(None, description="Only events with a message to this endpoint.")


class ReceivedEventQuery(EventQuery):
    source_id: str | None = Field(None, description="Only the events of this source.")


class DeadLetterQuery(WindowQuery):
    endpoint_id: str | None = Field(None, description="Only the dead letters of this endpoint.")


class MonitorQuery(PageQuery):
    # Spelt out: an enum would be a `$ref`, and a query parameter's schema is inline.
    state: Literal["new", "up", "late", "degraded", "down", "paused"] | None = Field(
        None, description="Only monitors in this state."
    )


class IncidentQuery(PageQuery):
    state: Literal["open", "resolved"] | None = Field(None, description="Only open, or only resolved, incidents.")


class MetricsQuery(BaseModel):
    hours: float = Field(24, gt=0, le=2160, description="The window the figures cover, in hours back from now.")


class EndpointStatsQuery(MetricsQuery):
    buckets: int = Field(24, ge=1, le=200, description="How many equal slices the window is cut into.")


class ParkedQuery(BaseModel):
    limit: int = Field(50, ge=1, le=MAX_SCAN, description="How many parked messages to show.")


class ListenQuery(BaseModel):
    since: datetime | None = Field(None, description="Replay what arrived since this time before streaming.")


class PingQuery(BaseModel):
    status: Literal["up", "down", "degraded"] | None = Field(None, description="The monitored system's status.")
    msg: str | None = Field(None, description="A message about the status (or `message`).")
    rid: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="A run id pairing a `start` with its finish (a UUID)."
    )


class HandshakeQuery(BaseModel):
    hub_mode: Literal["subscribe"] | None = Field(None, alias="hub.mode", description="Meta's callback check.")
    hub_verify_token: str | None = Field(None, alias="hub.verify_token", description="The source's verify token.")
    hub_challenge: str | None = Field(None, alias="hub.challenge", description="Echoed back when the token matches.")
