"""Wire schemas: what travels on the broker between services and from tenants.

Every message carries `schema_version`, so a consumer can refuse (and
dead-letter) what it does not understand instead of misreading it. The JSON
form of these models is the public contract documented in `docs/broker.md`.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from hookyard_common.header_rules import check_headers

#: The wire format's version; Final, so it is the `Literal[1]` the models declare.
SCHEMA_VERSION: Final = 1

# Dot-separated segments, as in `user.created` or `whatsapp.message.received`.
#: An event type's longest: its routing key, `<tenant_id>.<event_type>`, must fit AMQP's 255 bytes
#: (a tenant id is 28), or the broker refuses the publish and the sender would be told 503 for ever.
EVENT_TYPE_MAX_LENGTH = 200
EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=EVENT_TYPE_MAX_LENGTH, pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` (with a time zone) in UTC, as MongoDB stores times; a ValueError when UTC has
    no such time (`0001-01-01T00:00+14:00` is before year 1 there), which BSON cannot encode."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC (years 1 to 9999)") from None


# A time a client gives: with its zone, stored as UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a type prefix (`evt_...`, `msg_...`)."""
    return f"{prefix}_{secrets.token_urlsafe(18)}"


def sortable_id(prefix: str) -> str:
    """A unique identifier that sorts in creation order (nanoseconds, then randomness): records
    made within the same millisecond still list in the order they happened."""
    return f"{prefix}_{time.time_ns():016x}{secrets.token_hex(5)}"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @classmethod
    def _missing_(cls, value: object):
        # Seed 001 sends "Medium"; accept any case.
        return cls.__members__.get(value.lower()) if isinstance(value, str) else None


class WireModel(BaseModel):
    # Bytes travel as base64 in JSON.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes):
        return cls.model_validate_json(data)


class Inbound(WireModel):
    """How a provider's webhook arrived, attached to the event the ingest made of it.

    The raw body and the headers (credentials such as Authorization removed)
    let the message be logged, replayed and relayed byte for byte, so the
    provider's signature still verifies downstream.
    """

    provider: Identifier
    method: str
    url: str
    headers: list[tuple[str, str]]
    # The body byte for byte: as text when it is UTF-8 (nearly every webhook,
    # and no base64 inflation on the broker), else base64.
    body: str
    body_encoding: Literal["utf-8", "base64"] = "utf-8"
    media_type: str
    client_ip: str
    signature_scheme: str
    # The provider's own id for this delivery: a second arrival is a duplicate.
    dedup_key: Annotated[str, StringConstraints(max_length=512)] | None = None

    @staticmethod
    def encode_body(raw: bytes) -> tuple[str, str]:
        """(body, body_encoding) for raw bytes."""
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode(), "base64"

    @property
    def raw_body(self) -> bytes:
        return self.body.encode() if self.body_encoding == "utf-8" else base64.b64decode(self.body)


def _sendable(headers: dict[str, str]) -> dict[str, str]:
    # Events published straight onto the broker skip the API's checks: refused here instead.
    check_headers(headers.items())
    return headers


class Event(WireModel):
    """A tenant's event, from `POST /v1/events`, a provider source or the broker."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: Identifier = Field(default_factory=lambda: new_id("evt"))
    tenant_id: Identifier
    event_type: EventType
    # Required for tenants' events; null for events from a source, whose
    # content is `inbound.body`, the provider's request exactly as received.
    payload: Any = None
    occurred_at: datetime = Field(default_factory=utcnow)
    idempotency_key: Annotated[str, StringConstraints(max_length=256)] | None = None
    severity: Severity | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    # Seed 001's per-event overrides: deliver to this endpoint only, with extra headers.
    target_endpoint_id: Identifier | None = None
    # ... or once, to this URL instead of the endpoint's (routing.recipients; the SSRF guard still applies).
    target_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    headers: Annotated[dict[str, str], AfterValidator(_sendable)] = Field(default_factory=dict)
    # Set when the event came in through an inbound source.
    source_id: Identifier | None = None
    inbound: Inbound | None = None


class DeliveryTask(WireModel):
    """One message to one endpoint, between attempts (dispatcher → retry tiers → retrier)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    # The Standard Webhooks `webhook-id`: the same on every attempt of this message.
    message_id: Identifier = Field(default_factory=lambda: new_id("msg"))
    endpoint_id: Identifier
    event: Event
    attempt: int = Field(1, ge=1, description="Number of the attempt this task is for.")
    due_at: datetime = Field(default_factory=utcnow)
    first_attempt_at: datetime | None = None
    last_failure: str | None = None
    # Set on a dead letter's replay: its record is cleared once it is delivered.
    replay: bool = False
    # Times in a row this task found its endpoint busy and was put off (not attempts):
    # each deferral waits twice as long as the one before (broker/tiers.py, deferral_delay).
    deferrals: int = Field(0, ge=0)
    # Set on a watch copy: the delivery was still going on at this time when its message
    # was acked; the copy is attempted only if no attempt was recorded since (worker.py).
    watch_since: datetime | None = None


class MonitorState(StrEnum):
    new = "new"
    up = "up"
    late = "late"
    degraded = "degraded"
    down = "down"
    paused = "paused"


class MonitorStatus(WireModel):
    """A monitor's change of state, as the heartbeat and the pings report it: the `data`
    of `monitor.down`, `monitor.degraded`, `monitor.up`, `monitor.late`, `monitor.flapping`
    and `monitor.stable` events."""

    schema_version: Literal[1] = SCHEMA_VERSION
    monitor_id: Identifier
    tenant_id: Identifier
    monitor_name: str | None = None
    status: MonitorState
    previous_status: MonitorState | None = None
    # `ping`: the monitored system said so; `no_ping`: it went quiet past its deadline;
    # `run_overdue`: a run it started did not finish in time;
    # `reminder`: still down (renotify_seconds); `stable`: a flapping monitor settled;
    # `maintenance_over`: it changed during a maintenance window that has ended.
    reason: Literal["ping", "no_ping", "run_overdue", "reminder", "stable", "maintenance_over"] | None = None
    message: Annotated[str, StringConstraints(max_length=1_000)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    incident_id: Identifier | None = None
    last_ping_at: datetime | None = None
    at: datetime = Field(default_factory=utcnow)
    # Why, for people (one sentence) and in the fields it is made of (monitors/alert_context.py).
    why: str | None = None
    missed_since: datetime | None = None
    last_body: Annotated[str, StringConstraints(max_length=1_000)] | None = None
    last_body_truncated: bool = False
    last_run_seconds: float | None = None
    last_ping_kind: str | None = None
