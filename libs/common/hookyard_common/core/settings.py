"""Every knob of every service, read from environment variables with defaults.

A field `prefetch` is read from `HOOKYARD_PREFETCH`: one alias generator
gives every field its variable, and only the three standard names
(`AMQP_URL`, `MONGO_URI`, `ROOT_PATH`) say theirs. This is pydantic-settings'
`env_prefix` spelled as an alias, on purpose: `env_prefix` matches an upper-case
variable only when names are case-insensitive, which would also accept
`hookyard_prefetch` and make a refused value's error name the field instead
of the variable the operator set.

`docs/configuration.md` documents each one; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from pydantic import AliasGenerator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What every variable not named by a standard starts with.
ENV_PREFIX = "HOOKYARD_"


def prefixed_variable(field: str) -> str:
    """The environment variable of a field that names no standard one: `prefetch` → `HOOKYARD_PREFETCH`."""
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        alias_generator=AliasGenerator(validation_alias=prefixed_variable),
    )

    # Dependencies.
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/",
        validation_alias="AMQP_URL",
        description=(
            "RabbitMQ connection URL (vhost included); for a cluster, its nodes comma-separated, tried in turn "
            "on every (re)connect (docs/broker.md#a-cluster)."
        ),
    )
    broker_service_users: tuple[str, ...] = Field(
        (),
        description=(
            "RabbitMQ users, besides the one in AMQP_URL, that Hookyard's services connect as (JSON list): "
            "events they publish may carry source and operational fields (docs/broker.md#tenant-accounts)."
        ),
    )
    mongo_uri: str = Field(
        "mongodb://127.0.0.1:27017/",
        validation_alias="MONGO_URI",
        description="MongoDB connection string.",
    )
    mongo_db: str = Field("hookyard", description="Database name.")
    mongo_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest wait for a reachable MongoDB server (server selection) before an operation fails.",
    )

    # Where each service listens. The ingest serves its API and its probes on
    # one port; the consumers serve only /healthz, /readyz and /metrics.
    http_host: str = Field(
        "127.0.0.1",
        description="Interface every service binds to (0.0.0.0 in containers).",
    )
    ingest_port: int = Field(
        8000,
        description="Port of the ingest (provider webhooks, tenant API, pings, probes).",
    )
    dispatcher_port: int = Field(
        8001,
        description="Port of the dispatcher's probes and metrics.",
    )
    retrier_port: int = Field(8002, description="Port of the retrier's probes and metrics.")
    heartbeat_port: int = Field(
        8003,
        description="Port of the heartbeat's probes and metrics.",
    )

    # The ingest.
    admin_token: str = Field(
        "",
        description="Bearer token for the admin API (creating tenants). Empty disables it.",
    )
    # The console (docs/console.md) and its operator view.
    console_session_idle_seconds: float = Field(
        1800.0,
        gt=0,
        description="A console session ends after this many seconds without a call; each call moves it on.",
    )
    rabbitmq_management_url: str = Field(
        "",
        description="RabbitMQ's management HTTP API (`http://user:password@host:15672/`), where the operator "
        "view reads queue depths, consumers and the oldest message's age; empty: depths only, by AMQP.",
    )
    service_ready_urls: dict[str, str] = Field(
        {},
        description="The other services' readiness probes the operator view shows, as a JSON object of name "
        'to URL (`{"dispatcher": "http://dispatcher:8001/readyz"}`); `make up` sets its own.',
    )
    root_path: str = Field(
        "",
        pattern=r"^(/[^/?#]+)*$",
        validation_alias="ROOT_PATH",
        description="Path prefix the ingest is published under behind a proxy, e.g. /hookyard.",
    )
    public_url: str = Field(
        "",
        description="Scheme and host providers use to reach the ingest; derived from requests when empty.",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="CIDRs of proxies whose X-Forwarded-For/-Proto/-Host headers are believed (JSON list).",
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1,
        description="Default body limit of a source; a source may set its own up to 16 times this.",
    )
    # Slow and greedy clients (docs/ingest.md#slow-and-greedy-clients).
    http_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description=(
            "A request's head must arrive within this long of its first byte, and its body within as long again; "
            "slower clients get 408."
        ),
    )
    http_keepalive_seconds: float = Field(
        75.0,
        gt=0,
        description=(
            "An HTTP connection with no request under way is closed after this long (above proxies' own idle timeouts)."
        ),
    )
    body_budget_bytes: int = Field(
        33_554_432,
        ge=1,
        description=(
            "Request-body bytes one ingest process holds at once on the public routes; requests past it wait "
            "their turn."
        ),
    )
    body_budget_wait_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a request waits for the body budget before it is answered 503 with Retry-After.",
    )
    signature_tolerance_seconds: int = Field(
        300,
        ge=1,
        description="How far a signed timestamp (providers', and monitor pings') may be in the past or the future.",
    )
    rate_limit_per_ip: int = Field(
        100,
        ge=1,
        description=(
            "Requests a client IP may make to one source per window, across all ingest processes, unless the "
            "source sets its own."
        ),
    )
    rate_limit_per_source: int = Field(
        6_000,
        ge=1,
        description="Requests a source accepts per window, across all ingest processes, unless it sets its own.",
    )
    rate_limit_window_seconds: float = Field(
        60.0,
        gt=0,
        description="Length of the sliding rate-limit window.",
    )
    rate_limit_per_ip_total: int = Field(
        6_000,
        ge=1,
        description=(
            "Requests a client IP may make to the public edge (every source and monitor ping together) per "
            "window, across all ingest processes."
        ),
    )
    metrics_tenant_labels: int = Field(
        0,
        ge=0,
        le=1_000,
        description=(
            "Opt-in per-tenant metrics: the first N tenants a process sees get a `tenant` label of their own on the "
            "hookyard_tenant_* metrics, every later one `other` (0: off, no metric holds an id)."
        ),
    )
    rate_limit_shared: bool = Field(
        True,
        description=(
            "Count rate limits in MongoDB so they hold across all ingest processes; false: each process counts alone."
        ),
    )
    rate_limit_store_timeout_seconds: float = Field(
        0.25,
        gt=0,
        description="How long taking a batch of tokens from MongoDB may take before the process counts alone.",
    )
    rate_limit_fallback_seconds: float = Field(
        5.0,
        gt=0,
        description="After MongoDB failed to answer, how long a process counts alone before asking it again.",
    )
    failure_limit_per_ip: int = Field(
        30,
        ge=1,
        description=(
            "Failed lookups (unknown source, unknown monitor token, invalid API key) a client IP may cause per "
            "window, per process; past it, 429 before any lookup."
        ),
    )
    negative_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a replica remembers that a source id or monitor token does not exist.",
    )
    api_key_cache_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a replica trusts what it read of an API key and its tenant: a key revoked or a"
        " tenant disabled or deleted is refused by every other replica within this time.",
    )
    source_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a replica reuses a source's configuration before reading it again.",
    )
    message_retention_days: float = Field(
        30.0,
        gt=0,
        description=(
            "How long received messages, tenants' events and delivery attempts are kept (and a provider's "
            "duplicates recognised)."
        ),
    )
    dead_letter_retention_days: float = Field(
        30.0,
        gt=0,
        description="How long a dead letter (with its full payload) stays replayable after it died.",
    )
    dead_letter_replay_retention_days: float = Field(
        7.0,
        gt=0,
        description="How long a bulk replay's progress record is kept.",
    )
    idempotency_window_hours: float = Field(
        24.0,
        gt=0,
        description="How long a tenant's idempotency key holds: a repeat within it gets the first answer, once.",
    )
    search_scan_limit: int = Field(
        1_000,
        ge=10,
        le=100_000,
        description="Most of a tenant's events one page of a search reads to apply its status and endpoint filters.",
    )

    # `hookyard listen` connections to the ingest.
    listen_buffer_bytes: int = Field(
        4_194_304,
        ge=1_024,
        description="Event bytes held for one listener that reads too slowly before it is dropped (close 4008).",
    )
    listen_heartbeat_seconds: float = Field(
        15.0,
        gt=0,
        description="Interval of listeners' heartbeats and pings; no pong within half of it drops the connection.",
    )
    listen_max_per_tenant: int = Field(
        20,
        ge=1,
        description="Listeners one tenant may have connected at once, per ingest replica.",
    )

    # Delivery (dispatcher and retrier).
    delivery_allowed_cidrs: tuple[str, ...] = Field(
        (),
        description=(
            "Private/loopback CIDRs endpoints may still resolve to (JSON list); all else non-public is refused."
        ),
    )
    delivery_max_connections: int = Field(
        512,
        ge=1,
        description="Size of the delivery connection pool, per replica.",
    )
    delivery_response_max_bytes: int = Field(
        65_536,
        ge=0,
        description="How much of an endpoint's response body is read and stored.",
    )
    endpoint_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a replica reuses a tenant's endpoints before reading them again.",
    )
    endpoint_slot_wait_seconds: float = Field(
        0.5,
        ge=0,
        description="How long a delivery waits for a busy endpoint's slot before it is deferred.",
    )
    deferral_max_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest wait of a delivery put off because its endpoint is busy (deferrals double up to it).",
    )
    outage_retry_max_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest wait of a message held because a dependency (MongoDB, the broker, DNS) failed.",
    )
    retry_after_max_seconds: float = Field(
        3_600.0,
        ge=0,
        description="Longest Retry-After an endpoint's answer may impose.",
    )
    retry_min_penalty_seconds: float = Field(
        5.0,
        ge=0,
        description="Shortest wait after a timeout or a 429.",
    )
    circuit_window_seconds: float = Field(
        60.0,
        gt=0,
        description="Window over which one replica counts an endpoint's attempts for its failure rate.",
    )
    circuit_failure_rate: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Share of failed attempts in the window that pauses an endpoint (0.7 = 70 %).",
    )
    circuit_minimum_requests: int = Field(
        10,
        ge=1,
        description="Attempts the window must hold before its failure rate can pause an endpoint.",
    )
    circuit_pause_seconds: float = Field(
        60.0,
        gt=0,
        description="First pause of a failing endpoint; each failed probe doubles it.",
    )
    circuit_max_pause_seconds: float = Field(
        1_800.0,
        gt=0,
        description="Longest pause between probes of a failing endpoint.",
    )
    endpoint_disable_after_seconds: float = Field(
        432_000.0,
        gt=0,
        description="An endpoint failing without a single success for this long is disabled (5 days).",
    )
    retry_jitter: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Spread of retry delays (0.2 = ±20 %) when an endpoint's policy asks for jitter.",
    )

    # Monitors: pings (ingest) and the heartbeat scanner.
    monitor_scan_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the heartbeat looks for monitors past their deadline (and unsent alerts).",
    )
    monitor_scan_batch: int = Field(
        500,
        ge=1,
        description="Monitors the heartbeat reads per query while scanning.",
    )
    monitor_cache_seconds: float = Field(
        5.0,
        ge=0,
        description=(
            "How long an ingest replica reuses a monitor's ping settings (secret, mapping) before reading them again."
        ),
    )
    ping_rate_limit_per_token: int = Field(
        60,
        ge=1,
        description="Pings one monitor accepts per rate-limit window, across all ingest processes.",
    )
    ping_rate_limit_per_ip: int = Field(
        600,
        ge=1,
        description="Pings one client IP may send to one monitor per rate-limit window, across all ingest processes.",
    )
    monitor_check_retention_days: float = Field(
        30.0,
        gt=0,
        description="How long each ping's check record is kept.",
    )
    monitor_history_retention_days: float = Field(
        90.0,
        ge=31,
        description=(
            "How long a monitor's state changes and resolved incidents are kept; at least 31 days, since "
            "uptime is computed over 30 from the state changes."
        ),
    )

    # Start-up and shutdown.
    connect_attempts: int = Field(
        30,
        ge=1,
        description="Attempts to reach the broker and the database at start-up before exiting.",
    )
    connect_max_wait_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest pause between start-up connection attempts (exponential backoff).",
    )
    shutdown_deadline_seconds: float = Field(
        25.0,
        gt=0,
        description="On SIGTERM, time allowed for in-flight work before closing anyway.",
    )
    shutdown_unready_seconds: float = Field(
        0.0,
        ge=0,
        description=(
            "On SIGTERM, how long a service goes on serving while /readyz answers 503, so a load balancer "
            "polling it stops sending requests before the port closes; 0 closes it at once."
        ),
    )
    readiness_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="Time /readyz waits for the database ping.",
    )

    # Consumers.
    publish_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest wait for the broker's confirm of a publish before it counts as failed.",
    )
    prefetch: int = Field(
        64,
        ge=1,
        description="Unacknowledged messages a consumer holds at once (per service replica).",
    )
    delivery_hold_seconds: float = Field(
        1.0,
        gt=0,
        description=(
            "Longest time a message waits unacked for its deliveries; after it, those still going on are "
            "covered by a watch copy on the retry tiers and the message is acked (frees its prefetch place)."
        ),
    )
    lane_prefetch: int = Field(
        16,
        ge=1,
        description=(
            "Unacknowledged events a dispatcher replica holds at once from one tenant's lane; a replica "
            "holds at most busy lanes x this (quorum queues have no per-channel limit)."
        ),
    )
    lane_resync_seconds: float = Field(
        30.0,
        gt=0,
        description="How often a dispatcher rereads the tenants from MongoDB to consume lanes it missed.",
    )
    tenant_max_in_flight: int = Field(
        128,
        ge=1,
        description=(
            "Deliveries one tenant may have in flight at once per replica, over all its endpoints, so hung "
            "endpoints cannot take the whole connection pool; more are deferred. Keep it below "
            "HOOKYARD_DELIVERY_MAX_CONNECTIONS."
        ),
    )
    watch_grace_seconds: float = Field(
        10.0,
        gt=0,
        description="How long after a handed-over delivery's timeout its watch copy comes back to be checked.",
    )
    retry_tiers_ms: tuple[int, ...] = Field(
        (1_000, 5_000, 30_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000),
        description=(
            "Delay tiers of the retry queues, in milliseconds, as a JSON list. Each tier is one broker "
            "queue the retrier passes on when its delay has run; names carry the value, so changing it adds queues."
        ),
    )
    invalid_scan_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the retrier looks at hookyard.invalid for its count and oldest age.",
    )

    # Logging.
    log_level: str = Field(
        "INFO",
        description="DEBUG, INFO, WARNING or ERROR; DEBUG adds a line per delivery attempt.",
    )
    access_log: bool = Field(
        False,
        description=(
            "Ingest: log one structured record per request (method, route pattern, status, duration, client, "
            "X-Request-Id, tenant and event ids once known; trace_id and span_id when tracing)."
        ),
    )
    event_loop: str = Field(
        "uvloop",
        pattern="^(uvloop|asyncio)$",
        description=(
            "Each service's event loop: `uvloop` (libuv's: about a sixth less CPU per ingest request, "
            "docs/benchmarks.md) or `asyncio`, the standard library's."
        ),
    )
    log_format: str = Field(
        "json",
        pattern="^(json|text)$",
        description="`json` (one object a line) or `text` for a terminal.",
    )

    def service_port(self, service: str) -> int:
        return getattr(self, f"{service}_port")


def environment_variables() -> dict[str, str]:
    """Each setting's environment variable, by field name (what tests and deployment checks set)."""
    return {name: str(info.validation_alias) for name, info in Settings.model_fields.items()}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def ingest_address(environ: Mapping[str, str], settings: Settings) -> tuple[str, int]:
    """Where the ingest listens. HOOKYARD_HTTP_HOST / HOOKYARD_INGEST_PORT when the operator set them;
    else seed 000's WEBHOOK_HOST / WEBHOOK_PORT; else, for the port, Cloud Run's PORT (where it sends
    traffic); else the settings' defaults. So a seed 000 deployment's variables keep working."""
    host = environ.get("HOOKYARD_HTTP_HOST") or environ.get("WEBHOOK_HOST") or settings.http_host
    port = environ.get("HOOKYARD_INGEST_PORT") or environ.get("WEBHOOK_PORT") or environ.get("PORT")
    if port is None:
        return host, settings.ingest_port
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65_536):
        raise SystemExit(f"the ingest's port must be a number from 1 to 65535, not {port!r}")
    return host, int(port)
