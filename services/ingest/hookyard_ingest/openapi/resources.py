"""The shapes the API answers with, as pydantic models: documentation, not a runtime step.

Handlers build their answers as plain dicts (`/in` and `/ping` are hot, and
a second validation of what was just read from the store buys nothing); the
document shows these models, and the tests check live answers against it
(schemathesis, the generated client). Resources that carry a tenant's own
nested settings (an endpoint's, a source's) name their fixed fields and
allow the rest, so a new setting does not break a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.delivery.event_status import Status
from hookyard_common.monitors.maintenance import MaintenanceWindow

T = TypeVar("T")


class Shape(BaseModel):
    """An answer's fixed fields; more may be added, so clients must ignore what they do not know."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Shape):
    code: str = Field(description="A stable, machine-readable name of the problem, e.g. `invalid_request`.")
    message: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(None, description="The input at fault: a dotted path into the body, or a parameter.")
    problems: list[dict[str, str]] | None = Field(None, description="Every problem found, each `{field, problem}`.")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx the ingest answers."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "unknown_endpoint", "message": "no such endpoint"}}]}
    )
    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; pass `next_cursor` back as `cursor` for the next one."""

    data: list[T]
    next_cursor: str | None = Field(description="The cursor of the next page; null on the last one.")


class Tenant(Shape):
    id: str
    name: str
    created_at: datetime
    disabled: bool = Field(False, description="A disabled tenant's calls, webhooks and deliveries stop.")


class TenantDeleted(Shape):
    id: str
    deleted: dict[str, int] = Field(description="How many documents went, per collection.")


class ApiKey(Shape):
    """A tenant's API key as listed: never the key itself, nor its hash."""

    id: str
    name: str
    prefix: str = Field(description="The key's first 8 characters after `hy_`, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = Field(description="When a rotated key stops working; null: until revoked.")


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key: shown in this answer only.")


class TenantCreated(Tenant):
    api_key: str = Field(description="The tenant's API key: shown only in this answer, stored hashed.")


class Source(Shape):
    id: str
    name: str
    provider: str
    url: str = Field(description="Where the provider sends its webhooks: `<public base>/in/<id>`.")
    options: dict[str, Any]
    secrets_count: int
    allowed_cidrs: list[str]
    dedup_path: str | None = Field(description="The body field whose value is each message's dedup key.")
    path_alias: str | None = Field(description="The source's fixed path (`POST <alias>/receive`), or null.")
    response_style: Literal["standard", "envelope"]
    created_at: datetime
    updated_at: datetime


class SourceCreated(Source):
    secrets: list[str] = Field(description="The source's secrets: shown only in this answer.")
    secrets_generated: bool


class Received(Shape):
    id: str = Field(description="The event id the message is delivered and logged under.")
    status: Literal["accepted"]


class EventAccepted(Shape):
    id: str
    event_type: str
    occurred_at: datetime


class Endpoint(Shape):
    id: str
    url: str
    active: bool
    created_at: datetime
    updated_at: datetime


class EndpointCreated(Endpoint):
    secret: str = Field(description="The signing secret: shown when made, then on `GET .../secret`.")


class EndpointImported(Shape):
    endpoint: EndpointCreated
    mapped: dict[str, str] = Field(description="Each seed 001 field used, and the endpoint field it became.")
    ignored: dict[str, str] = Field(description="Each seed 001 field not used, and why.")


class EndpointRotated(EndpointCreated):
    previous_secret_expires_at: datetime


class EndpointSigningSecret(Shape):
    secret: str
    previous_secrets_valid: int = Field(description="Older secrets still signing beside it, within their grace.")


class Verification(Shape):
    verified: bool
    scheme: str


class Message(Shape):
    """A provider's webhook as it arrived."""

    id: str
    source_id: str
    provider: str
    received_at: datetime
    event_type: str
    dedup_key: str | None
    method: str
    url: str
    client_ip: str
    media_type: str
    size: int
    verification: Verification


class MessageDetail(Message):
    headers: Any = Field(description="The headers as received; empty once the payload was erased.")
    body_base64: str | None = Field(description="The body; null once the payload was erased.")
    body: str | None = Field(description="The body as UTF-8 text; null when it is not text.")


class Attempt(Shape):
    id: str
    message_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    at: datetime
    url: str
    outcome: str
    reason: str | None
    status: int | None
    latency_ms: float | None


class OwnEventSummary(Shape):
    """A tenant's own event as a search lists it."""

    id: str
    event_type: str
    status: Status = Field(description="Derived from its messages' attempts and dead letters (docs/api.md#statuses).")


class OwnEvent(Shape):
    """A tenant's own event, as published, with its delivery status."""

    id: str
    event_type: str
    status: Status = Field(description="Derived from its messages' attempts and dead letters (docs/api.md#statuses).")


class Erased(Shape):
    id: str
    kind: Literal["message", "event"]
    payload_erased_at: datetime
    dead_letters_erased: int


class Requeued(Shape):
    id: str
    requeued: int
    endpoint_ids: list[str]


class Figures(Shape):
    messages: int
    successful: int
    failed: int
    pending_retries: int
    dead_letters: int
    attempts: int
    avg_response_ms: float | None


class DeliveryMetrics(Shape):
    since: datetime
    total: Figures
    endpoints: dict[str, Figures]
    # The total again under seed 001's names (docs/migrating.md), so its dashboards read this answer as is.
    total_events: int = Field(description="`total.messages`, by seed 001's name.")
    successful_events: int = Field(description="`total.successful`, by seed 001's name.")
    failed_events: int = Field(description="`total.failed`, by seed 001's name.")
    pending_retries: int = Field(description="`total.pending_retries`, by seed 001's name.")
    dead_letter_count: int = Field(description="`total.dead_letters`, by seed 001's name.")
    avg_response_time_ms: float | None = Field(description="`total.avg_response_ms`, by seed 001's name.")
    last_updated: datetime = Field(description="When these figures were computed (seed 001's name).")


class SourceStats(Shape):
    source_id: str
    last_received_at: datetime | None = Field(description="When the latest message in the log arrived; null if none.")
    signature_failures: int = Field(description="Requests refused for their signature since the source was made.")
    last_signature_failure_at: datetime | None


class EndpointSlice(Shape):
    start: datetime
    attempts: int
    successful: int
    success_rate: float | None = Field(description="Successful attempts over attempts; null when none were made.")
    avg_latency_ms: float | None


class EndpointStats(Shape):
    endpoint_id: str
    since: datetime
    bucket_seconds: float
    buckets: list[EndpointSlice] = Field(description="Equal slices of the window, oldest first, empty ones included.")


class DeadLetter(Shape):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    attempt_count: int
    reason: str | None
    dead_at: datetime
    state: Literal["dead", "replaying"]
    can_retry: bool


class DeadLetterDetail(DeadLetter):
    event: dict[str, Any]
    attempts: list[Attempt]


class Replaying(Shape):
    id: str
    state: Literal["replaying"]


class ReplayStarted(Shape):
    requeued: int
    replay_id: str


class ReplayProgress(Shape):
    replay_id: str
    requeued: int
    replaying: int
    failed_again: int
    delivered: int
    done: bool
    created_at: datetime


class Monitor(Shape):
    id: str
    name: str
    state: str
    token: str
    ping_url: str
    webhookToken: str = Field(description="The token again, under seed 004's name.")  # noqa: N815
    webhookUrl: str = Field(description="Seed 004's status-push URL: `<public base>/webhooks/<token>`.")  # noqa: N815
    heartbeatUrl: str = Field(description="Seed 004's heartbeat URL: `webhookUrl` + `/heartbeat`.")  # noqa: N815
    type: Literal["webhook"] = Field(description="Seed 004's monitor type: every monitor is passive.")
    url: str | None = Field(description="The system watched, for people (seed 004's `url`).")
    slug: str | None = Field(description="Its name in pings by the tenant's ping key.")
    badge_key: str | None = Field(description="The secret of its badge URLs (not a ping token).")
    badge_url: str | None = Field(description="Its SVG badge; `.json` in place of `.svg` gives `{status}`.")
    heartbeat_interval_seconds: int | None = Field(
        description="Null for a monitor on a cron schedule, or that is only pushed statuses."
    )
    schedule: str | None = Field(description="A cron expression, read in `tz`; null on an interval.")
    tz: str
    grace_seconds: int
    max_run_seconds: int | None = Field(description="The longest a run may take; null: its grace.")
    alerts_enabled: bool
    has_secret: bool
    pings_received: int
    last_ping_at: datetime | None
    last_ping_kind: Literal["start", "success", "fail", "log", "up", "down", "degraded"] | None
    last_body: str | None = Field(None, description="The last ping's body, its first 100 KB (not in lists).")
    run_started_at: datetime | None = Field(description="When the open run started; null with none open.")
    last_run_seconds: float | None
    open_incident_id: str | None
    down_after: int
    up_after: int
    renotify_seconds: int | None
    flap_threshold: int | None
    flap_window_seconds: int
    maintenance: list[MaintenanceWindow]
    in_maintenance: bool = Field(description="Whether a maintenance window holds now: changes are not alerted.")
    maintenance_ends_at: datetime | None
    flapping: bool = Field(description="Changing state too often: changes are recorded, not alerted, until stable.")
    flapping_since: datetime | None
    consecutive_failures: int
    consecutive_successes: int
    legacy_signature: bool
    unsigned_heartbeats: bool
    created_at: datetime
    updated_at: datetime


class Check(Shape):
    id: str
    at: datetime
    outcome: str
    method: str
    client_ip: str
    kind: str | None = Field(None, description="start, success, fail, log, up, down or degraded.")
    exit_status: int | None = None
    rid: str | None = None
    run_seconds: float | None = Field(None, description="The run this ping finished, in seconds.")
    body: str | None = Field(None, description="The body, its first 100 KB.")
    body_size: int
    body_truncated: bool = Field(False, description="Whether `body` is cut short of the body's `body_size` bytes.")


class Flip(Shape):
    id: str
    at: datetime
    from_: str = Field(alias="from")
    to: str
    reason: str
    maintenance: bool = Field(description="Recorded in a maintenance window, so not alerted.")


class Incident(Shape):
    id: str
    state: Literal["open", "resolved"]
    status: str
    worst_status: str
    opened_at: datetime
    resolved_at: datetime | None
    duration_seconds: float | None
    reason: str


class MonitorStats(Shape):
    monitor_id: str
    state: str
    pings_received: int
    last_ping_at: datetime | None
    uptime: dict[str, Any]
    incidents_30d: int
    open_incident_id: str | None
    maintenance_flips_30d: int = Field(description="State changes of the last 30 days recorded in maintenance.")
    in_maintenance: bool
    runs_7d: RunDurations


class RunDurations(Shape):
    """The durations of the runs that succeeded over the last 7 days."""

    runs: int
    last_seconds: float | None
    median_seconds: float | None
    p95_seconds: float | None


class PingKey(Shape):
    ping_key: str
    ping_url_template: str
    created_at: datetime


class Badge(Shape):
    status: str
    label: str


class PingMonitor(Shape):
    id: str
    name: str
    state: str


class PingAccepted(Shape):
    ok: bool
    monitor: PingMonitor
    status: str | None
    kind: str
    changed: bool
    run_seconds: float | None
    check_id: str | None
    at: datetime


class SeedPingMonitor(PingMonitor):
    status: str = Field(description="The monitor's state, under seed 004's name.")
    lastHeartbeat: datetime = Field(description="When this ping was received (seed 004's name).")  # noqa: N815


class SeedPingAccepted(PingAccepted):
    """A ping's answer, with seed 004's `success` and monitor fields."""

    success: Literal[True]
    monitor: SeedPingMonitor


class ParkedMessage(Shape):
    key: str
    message_id: str | None
    routing_key: str | None
    origin_queue: str | None
    reason: str | None
    body_bytes: int


class ParkedList(Shape):
    count: int
    data: list[ParkedMessage]


class ParkedDetail(ParkedMessage):
    headers: dict[str, Any]
    body: str
    body_encoding: Literal["utf-8", "base64"]


class Redriven(Shape):
    redriven: int
    to: str | None = None


class ConsoleSession(Shape):
    """A console sign-in, as the page reads it (the session token itself is only in the HttpOnly cookie)."""

    role: Literal["tenant", "admin"]
    tenant_id: str | None = Field(
        description="The tenant whose data the tenant routes answer with: a tenant's own, the one an admin acts "
        "as, or null for an admin acting as nobody."
    )
    csrf: str = Field(description="Send it as `X-CSRF-Token` on every call that is not GET or HEAD.")
    expires_at: datetime = Field(description="When the session ends unless it is used again (sliding).")


class QueueFigures(Shape):
    name: str
    messages: int = Field(description="Messages in the queue, ready and unacknowledged.")
    consumers: int
    ready: int | None = Field(None, description="Messages waiting for a consumer (management API only).")
    unacknowledged: int | None = Field(None, description="Messages delivered, not yet acknowledged.")
    oldest_age_seconds: float | None = Field(
        None,
        description="How long the queue has not been empty, from the broker's depth history: the oldest "
        "message's age while nothing consumes it, at most that while something does. Null when the queue is "
        "empty or the age is not known (`age_known`).",
    )


class QueuesOverview(Shape):
    source: Literal["management", "amqp"] = Field(
        description="`management`: RabbitMQ's management API; `amqp`: passive declares (no age)."
    )
    age_known: bool
    note: str | None = Field(None, description="Why the figures came by AMQP although a management API is set.")
    data: list[QueueFigures]


class ParkedOverview(Shape):
    count: int
    data: list[ParkedMessage] = Field(description="The first few; the rest at `GET /v1/admin/parked`.")


class TenantDeadLetters(Shape):
    tenant_id: str
    count: int


class DeadLettersOverview(Shape):
    total: int = Field(description="Dead letters of every tenant (the collection's estimate).")
    by_tenant: list[TenantDeadLetters] = Field(description="The tenants with the most, the most first (100 at most).")


class ServiceReadiness(Shape):
    name: str
    status: Literal["ready", "not ready", "unreachable", "not configured"]
    reason: str | None = None
    url: str | None = Field(None, description="The `/readyz` asked (HOOKYARD_SERVICE_READY_URLS).")


class Overview(Shape):
    generated_at: datetime
    queues: QueuesOverview
    parked: ParkedOverview
    dead_letters: DeadLettersOverview
    services: list[ServiceReadiness]
