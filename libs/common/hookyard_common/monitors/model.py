"""Monitors: what a tenant configures, and how a monitor is stored.

The ingest's tenant API validates and stores them and answers their pings;
the heartbeat service reads them to find the ones past their deadline. The
ping token is the credential in the ping URL: 256 random bits, unique
(indexed), replaced at once by `regenerate-token`. The badge key is a second,
separate secret: it shows the state (badges) and cannot ping. A monitor
expects its pings every `heartbeat_interval_seconds` or at its cron
`schedule` (in `tz`, see schedule.py), never both; with neither it is
push-only. A `slug`, unique within the tenant, names it in pings by the
tenant's ping key (ping_keys.py). The monitor's history (checks, flips,
incidents, runs) is kept apart, in history.py and runs.py.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.monitors import alerting, thresholds
from hookyard_common.monitors.maintenance import MAX_WINDOWS, MaintenanceWindow
from hookyard_common.monitors.payload_mapping import PayloadMapping
from hookyard_common.monitors.schedule import MAX_EXPRESSION, Cron, zone
from hookyard_common.schemas import MonitorState, new_id
from hookyard_common.store.client import CollectionIndexes

COLLECTION = "monitors"

# Pings find theirs by token; the heartbeat finds the due ones and the unsettled
# changes by range reads on sparse indexes (only monitors that have them).
INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("token", ASCENDING)], unique=True, name="token"),
        IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),
        IndexModel([("due_at", ASCENDING)], sparse=True, name="due"),
        IndexModel([("outbox_at", ASCENDING)], sparse=True, name="outbox"),
        IndexModel([("state", ASCENDING)], name="state"),
        # The heartbeat's alert sweeps (monitors/alert_sweeps.py): reminders due, flapping monitors to settle.
        IndexModel([("renotify_at", ASCENDING)], sparse=True, name="renotify"),
        IndexModel([("stable_at", ASCENDING)], sparse=True, name="stable"),
        IndexModel([("maintenance_until", ASCENDING)], sparse=True, name="after_maintenance"),
        IndexModel([("badge_key", ASCENDING)], unique=True, sparse=True, name="badge_key"),
        # Only monitors that have a slug: the others share its absence.
        IndexModel(
            [("tenant_id", ASCENDING), ("slug", ASCENDING)],
            unique=True,
            partialFilterExpression={"slug": {"$type": "string"}},
            name="tenant_slug",
        ),
    ),
)

DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_GRACE_SECONDS = 60
MAX_INTERVAL_SECONDS = 31 * 86_400
MAX_GRACE_SECONDS = 7 * 86_400
MAX_RUN_SECONDS = 31 * 86_400
TOKEN_HEX_LENGTH = 64
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"

DOWN_AFTER = "Down after this many consecutive failure pings or missed periods."
UP_AFTER = "Back up (from down or degraded) after this many consecutive successful pings."
RENOTIFY = "While down, a monitor.down reminder every this many seconds; null for none."
FLAP_THRESHOLD = "More state changes than this within flap_window_seconds raise one monitor.flapping; null: off."
FLAP_WINDOW = "The window flap_threshold counts in, and how long a flapping monitor must keep still to be stable."
MAINTENANCE = "Windows (one-off start/end, or cron + tz + duration_seconds) in which changes are not alerted."
LEGACY_SIGNATURE = "Also accept the body-only signature (no X-Hookyard-Timestamp), which can be replayed."
UNSIGNED_HEARTBEATS = "Accept bare heartbeats (no kind, status, message or body) unsigned; all else stays signed."
#: Seed 004's names of the create and update fields (camelCase), read as ours (docs/migrating.md).
SEED_NAMES = {
    "heartbeatInterval": "heartbeat_interval_seconds",
    "webhookSecret": "secret",
    "alertsEnabled": "alerts_enabled",
}
#: What a monitor given a secret by seed 004's name takes, as the seed did: the body-only
#: signature and unsigned heartbeats, unless the request says otherwise.
SEED_SIGNING = {"legacy_signature": True, "unsigned_heartbeats": True}


def seed_names(data: object) -> object:
    """Seed 004's camelCase names are ours under another spelling; both at once is ambiguous."""
    if not isinstance(data, dict) or not SEED_NAMES.keys() & data.keys():
        return data
    renamed = dict(data)
    for seed, ours in SEED_NAMES.items():
        if seed in renamed:
            if ours in renamed:
                raise ValueError(f"give {ours} or {seed} (seed 004's name), not both")
            renamed[ours] = renamed.pop(seed)
    if "webhookSecret" in data:
        renamed = {**SEED_SIGNING, **renamed}
    return renamed


def new_token() -> str:
    return secrets.token_hex(TOKEN_HEX_LENGTH // 2)


def new_badge_key() -> str:
    return secrets.token_hex(TOKEN_HEX_LENGTH // 2)


class MonitorFields(BaseModel):
    """What a tenant may set; every field optional so PATCH can reuse it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    # null (and no schedule): a push-only monitor, with no heartbeat expected and no deadline.
    heartbeat_interval_seconds: int | None = Field(None, ge=1, le=MAX_INTERVAL_SECONDS)
    # The zone is declared before the schedule: the schedule's check reads it.
    tz: str | None = Field(None, max_length=64, description="The IANA time zone of `schedule` (UTC by default).")
    schedule: str | None = Field(
        None,
        max_length=MAX_EXPRESSION,
        description="A cron expression (`0 3 * * *`), instead of heartbeat_interval_seconds.",
    )
    max_run_seconds: int | None = Field(
        None, ge=1, le=MAX_RUN_SECONDS, description="A run (start to finish) longer than this makes the monitor down."
    )
    slug: str | None = Field(
        None, pattern=SLUG_PATTERN, description="The monitor's name in pings by ping key, unique within the tenant."
    )
    grace_seconds: int | None = Field(None, ge=0, le=MAX_GRACE_SECONDS)
    # Pings must then carry X-Webhook-Signature (hex HMAC-SHA256 of the raw body). null removes it.
    secret: str | None = Field(None, min_length=16, max_length=1024)
    alerts_enabled: bool | None = None
    payload_mapping: PayloadMapping | None = None
    # Alerting that does not cry wolf (monitors/alerting.py) and signed timestamps (the ingest's ping_auth.py).
    down_after: int | None = Field(None, ge=1, le=thresholds.MAX_THRESHOLD, description=DOWN_AFTER)
    up_after: int | None = Field(None, ge=1, le=thresholds.MAX_THRESHOLD, description=UP_AFTER)
    renotify_seconds: int | None = Field(None, ge=60, le=MAX_INTERVAL_SECONDS, description=RENOTIFY)
    flap_threshold: int | None = Field(None, ge=2, le=thresholds.MAX_THRESHOLD, description=FLAP_THRESHOLD)
    flap_window_seconds: int | None = Field(None, ge=60, le=MAX_GRACE_SECONDS, description=FLAP_WINDOW)
    maintenance: list[MaintenanceWindow] | None = Field(None, max_length=MAX_WINDOWS, description=MAINTENANCE)
    legacy_signature: bool | None = Field(None, description=LEGACY_SIGNATURE)
    unsigned_heartbeats: bool | None = Field(None, description=UNSIGNED_HEARTBEATS)
    # Seed 004's create fields: every monitor is its `webhook` type; its `url` only documents the watched system.
    type: Literal["webhook"] | None = Field(
        None, exclude=True, description="Seed 004's monitor type: Hookyard's monitors are all `webhook` (passive)."
    )
    url: str | None = Field(None, max_length=2048, description="The system watched, for people (seed 004's `url`).")

    @model_validator(mode="before")
    @classmethod
    def _seed_names(cls, data: object) -> object:
        return seed_names(data)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str | None) -> str | None:
        if tz is not None:
            zone(tz)
        return tz

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, expression: str | None, info: ValidationInfo) -> str | None:
        if expression is not None:
            Cron(expression, info.data.get("tz") or "UTC").check()
        return expression

    @model_validator(mode="after")
    def _one_way_of_expecting_pings(self) -> MonitorFields:
        if self.schedule is not None and self.heartbeat_interval_seconds is not None:
            raise ValueError("give heartbeat_interval_seconds or schedule, not both")
        return self


class MonitorCreate(MonitorFields):
    name: str = Field(min_length=1, max_length=200)
    heartbeat_interval_seconds: int | None = Field(DEFAULT_INTERVAL_SECONDS, ge=1, le=MAX_INTERVAL_SECONDS)
    grace_seconds: int = Field(DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)
    alerts_enabled: bool = True
    down_after: int = Field(alerting.DEFAULT_DOWN_AFTER, ge=1, le=thresholds.MAX_THRESHOLD, description=DOWN_AFTER)
    up_after: int = Field(alerting.DEFAULT_UP_AFTER, ge=1, le=thresholds.MAX_THRESHOLD, description=UP_AFTER)
    flap_window_seconds: int = Field(
        alerting.DEFAULT_FLAP_WINDOW_SECONDS, ge=60, le=MAX_GRACE_SECONDS, description=FLAP_WINDOW
    )
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, max_length=MAX_WINDOWS, description=MAINTENANCE)
    legacy_signature: bool = Field(False, description=LEGACY_SIGNATURE)
    unsigned_heartbeats: bool = Field(False, description=UNSIGNED_HEARTBEATS)

    @model_validator(mode="before")
    @classmethod
    def _a_schedule_replaces_the_default_interval(cls, data: object) -> object:
        data = seed_names(data)
        if isinstance(data, dict) and data.get("schedule") is not None and "heartbeat_interval_seconds" not in data:
            return {**data, "heartbeat_interval_seconds": None}
        return data


# The alert and signing fields, stored as given; null for one that may not be null is refused by PATCH.
ALERT_FIELDS = (
    "down_after",
    "up_after",
    "renotify_seconds",
    "flap_threshold",
    "flap_window_seconds",
    "maintenance",
    "legacy_signature",
    "unsigned_heartbeats",
)
NOT_NULL = ("down_after", "up_after", "flap_window_seconds", "maintenance", "legacy_signature", "unsigned_heartbeats")


# Fields whose change the ingest's cached ping settings must notice (see `config_rev`).
PING_SETTINGS = {
    "secret",
    "payload_mapping",
    "heartbeat_interval_seconds",
    "grace_seconds",
    "name",
    "legacy_signature",
    "unsigned_heartbeats",
    "schedule",
    "tz",
    "max_run_seconds",
}
# The timings a monitor's deadlines are computed from.
TIMINGS = {"heartbeat_interval_seconds", "grace_seconds", "schedule", "tz"}


def new_monitor(tenant_id: str, fields: MonitorCreate, now: datetime) -> dict:
    return {
        "_id": new_id("mon"),
        "tenant_id": tenant_id,
        "name": fields.name,
        "token": new_token(),
        "secret": fields.secret,
        "badge_key": new_badge_key(),
        "heartbeat_interval_seconds": fields.heartbeat_interval_seconds,
        "schedule": fields.schedule,
        "tz": fields.tz or "UTC",
        "grace_seconds": fields.grace_seconds,
        "max_run_seconds": fields.max_run_seconds,
        "slug": fields.slug,
        "url": fields.url,
        "alerts_enabled": fields.alerts_enabled,
        "payload_mapping": fields.payload_mapping.model_dump() if fields.payload_mapping else None,
        **fields.model_dump(include=set(ALERT_FIELDS)),
        "state": MonitorState.new.value,
        "state_changed_at": now,
        "status_message": None,
        "open_incident_id": None,
        # Bumped by every state change: state changes are conditional on it.
        "version": 0,
        # Bumped by every change of what a ping needs (token, secret, mapping, timings):
        # a ping's write is conditional on it, so a replica's cached copy is never trusted stale.
        "config_rev": 0,
        "pings_received": 0,
        "last_ping_at": None,
        # start, success, fail, log, up, down or degraded: what the last ping said.
        "last_ping_kind": None,
        "last_body": None,
        # The open run (runs.py): null when none is.
        "run_started_at": None,
        "last_run_seconds": None,
        "pending": [],
        "created_at": now,
        "updated_at": now,
    }
