"""Endpoints: where a tenant's events are delivered, and how.

The tenant API (ingest) validates and stores them; the dispatcher and the
retrier read them. One model, so the three agree on every field.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from hookyard_common.delivery.event_filter import any_matches
from hookyard_common.delivery.payload_filter import PayloadFilter
from hookyard_common.header_rules import HEADER_NAME_PATTERN, check_credential, check_headers

# Default schedule after the first attempt (Svix's): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE_SECONDS = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
# Headers Hookyard sets itself; an endpoint's custom headers may not override them.
RESERVED_HEADERS = {
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "x-webhook-signature",
    "x-event-type",
    "x-event-id",
    "x-tenant-id",
    "x-timestamp",
}


# An event type, or a filter with `*` segments (see event_filter).
EVENT_PATTERN = r"^(\*|[A-Za-z0-9_\-]+)(\.(\*|[A-Za-z0-9_\-]+))*$"
MAX_CUSTOM_HEADERS = 50


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    """Headers a tenant adds to deliveries: none of ours, none that frame the request (header_rules)."""
    clashes = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
    if clashes:
        raise ValueError(f"these headers are set by Hookyard: {', '.join(clashes)}")
    check_headers(sorted(value.items()))
    return value


# Extra headers sent with deliveries (an endpoint's, or one event's).
CustomHeaders = Annotated[
    dict[str, Annotated[str, Field(max_length=4096)]],
    Field(max_length=MAX_CUSTOM_HEADERS),
    AfterValidator(_check_headers),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: str = Field(min_length=1, max_length=4096)


class ApiKeyAuth(Strict):
    type: Literal["api_key"]
    token: str = Field(min_length=1, max_length=4096)
    header_name: str = Field("X-API-Key", pattern=HEADER_NAME_PATTERN, max_length=256)


class BasicAuth(Strict):
    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(max_length=1024)


Auth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth, Field(discriminator="type")]


def auth_headers(auth: BearerAuth | ApiKeyAuth | BasicAuth | None) -> dict[str, str]:
    """The header an endpoint's credentials travel in."""
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {auth.token}"}
    if isinstance(auth, ApiKeyAuth):
        return {auth.header_name: auth.token}
    if isinstance(auth, BasicAuth):
        return {"Authorization": "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()}
    return {}


class RetryPolicy(Strict):
    """Either an explicit schedule, or seed 001's exponential form; the default schedule otherwise."""

    schedule_seconds: list[Annotated[float, Field(ge=0, le=7 * 86_400)]] | None = Field(None, max_length=50)
    max_retries: int | None = Field(None, ge=0, le=50)
    initial_delay_seconds: float = Field(1.0, ge=0, le=7 * 86_400)
    # Bounded so the longest schedule's delays stay finite floats.
    backoff_multiplier: float = Field(2.0, ge=1, le=100)
    max_delay_seconds: float = Field(300.0, ge=0, le=7 * 86_400)
    jitter: bool = True

    @model_validator(mode="after")
    def _one_form(self) -> RetryPolicy:
        if self.schedule_seconds is not None and self.max_retries is not None:
            raise ValueError("give either schedule_seconds or max_retries, not both")
        return self

    def delays(self) -> list[float]:
        """Seconds to wait before each retry (before jitter); its length is the number of retries."""
        if self.schedule_seconds is not None:
            return list(self.schedule_seconds)
        if self.max_retries is None:
            return [float(d) for d in DEFAULT_SCHEDULE_SECONDS]
        return [
            min(self.initial_delay_seconds * self.backoff_multiplier**n, self.max_delay_seconds)
            for n in range(self.max_retries)
        ]


class EndpointSecret(Strict):
    secret: str
    # Set when a rotation replaced it: it keeps signing alongside the new one until then.
    expires_at: datetime | None = None


PAYLOAD_FILTER = (
    "Conditions on payload fields, all of which must hold: `{path, equals|in|exists}`, "
    "one or a list of up to 10 (docs/delivery.md#payload-filters)."
)


class EndpointFields(Strict):
    """What a tenant may set; every field optional so PATCH can reuse it. In a PATCH, null
    clears `description`, `auth`, `payload_filter` and `rate_limit_per_second`; the other fields always have
    a value, so null is refused for them (leave a field out to keep it)."""

    url: AnyHttpUrl | None = None
    description: str | None = Field(None, max_length=500)
    event_types: list[Annotated[str, Field(pattern=EVENT_PATTERN, max_length=256)]] | None = Field(None, max_length=100)
    source_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(None, max_length=100)
    payload_filter: PayloadFilter | None = Field(None, description=PAYLOAD_FILTER)
    headers: CustomHeaders | None = None
    auth: Auth | None = None
    timeout_seconds: float | None = Field(None, gt=0, le=120)
    retry_policy: RetryPolicy | None = None
    rate_limit_per_second: float | None = Field(None, gt=0, le=100_000)
    max_in_flight: int | None = Field(None, ge=1, le=256)
    active: bool | None = None
    signature_format: Literal["standard", "legacy"] | None = None
    # `slack` / `discord`: the body is a chat message (see chat_formats), e.g. for monitor alerts.
    payload_format: Literal["standard", "slack", "discord"] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and len(str(value)) > 2048:
            raise ValueError("url must be at most 2048 characters")
        return value

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: BearerAuth | ApiKeyAuth | BasicAuth | None):
        # Checked here, not on the stored model: an endpoint stored before these rules still
        # loads, and its delivery fails with the reason instead (delivery.build_request).
        if isinstance(value, BasicAuth):  # base64 would hide them from the header check
            check_credential(value.username)
            check_credential(value.password)
        if value is not None:
            check_headers(auth_headers(value).items())
        return value

    @field_validator(
        "url",
        "event_types",
        "source_ids",
        "headers",
        "timeout_seconds",
        "retry_policy",
        "max_in_flight",
        "active",
        "signature_format",
        "payload_format",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value


class EndpointCreate(EndpointFields):
    url: AnyHttpUrl
    secret: str | None = Field(None, max_length=1024, description="A `whsec_` secret; generated when absent.")


class EndpointHealth(Strict):
    """How an endpoint is doing (see health.py); all empty while it succeeds."""

    # Start of the current unbroken run of failures.
    failing_since: datetime | None = None
    # The last `endpoint.failing` warning of this run, as a share of the disable threshold.
    warned: float = 0.0
    # Circuit open: deliveries wait until then; then one of them probes.
    paused_until: datetime | None = None
    pause_seconds: float = 0.0
    # A probe is under way until then (its claim lapses if its replica dies).
    probe_until: datetime | None = None


class Endpoint(Strict):
    """An endpoint as stored (the `endpoints` collection) and as the delivery code reads it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    tenant_id: str
    url: str
    description: str | None = None
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    source_ids: list[str] = Field(default_factory=list)
    payload_filter: PayloadFilter | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    timeout_seconds: float = 30.0
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    rate_limit_per_second: float | None = None
    max_in_flight: int = 8
    active: bool = True
    signature_format: Literal["standard", "legacy"] = "standard"
    payload_format: Literal["standard", "slack", "discord"] = "standard"
    secrets: list[EndpointSecret]
    disabled_reason: str | None = None
    health: EndpointHealth = Field(default_factory=EndpointHealth)
    created_at: datetime
    updated_at: datetime
    #: Its tenant's state, read beside it (endpoint_cache.py), never stored with it.
    tenant_disabled: bool = Field(False, exclude=True)

    def signing_secrets(self, now: datetime) -> list[str]:
        """Current secret first, then rotated ones still in their grace period."""
        return [s.secret for s in self.secrets if s.expires_at is None or s.expires_at > now]

    def wants(self, event_type: str, source_id: str | None) -> bool:
        if self.source_ids and source_id not in self.source_ids:
            return False
        return any_matches(self.event_types, event_type)
