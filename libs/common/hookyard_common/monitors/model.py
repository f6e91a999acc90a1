"""Monitors: what a tenant configures, and how a monitor is stored.

The ingest's tenant API validates and stores them and answers their pings;
the heartbeat service reads them to find the ones past their deadline. The
ping token is the credential in the ping URL: 256 random bits, unique
(indexed), replaced at once by `regenerate-token`. The monitor's history
(checks, flips, incidents) is kept apart, in history.py.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.monitors.payload_mapping import PayloadMapping
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
    ),
)

DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_GRACE_SECONDS = 60
MAX_INTERVAL_SECONDS = 31 * 86_400
MAX_GRACE_SECONDS = 7 * 86_400
TOKEN_HEX_LENGTH = 64


def new_token() -> str:
    return secrets.token_hex(TOKEN_HEX_LENGTH // 2)


class MonitorFields(BaseModel):
    """What a tenant may set; every field optional so PATCH can reuse it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    # null: a push-only monitor, with no heartbeat expected and no deadline.
    heartbeat_interval_seconds: int | None = Field(None, ge=1, le=MAX_INTERVAL_SECONDS)
    grace_seconds: int | None = Field(None, ge=0, le=MAX_GRACE_SECONDS)
    # Pings must then carry X-Webhook-Signature (hex HMAC-SHA256 of the raw body). null removes it.
    secret: str | None = Field(None, min_length=16, max_length=1024)
    alerts_enabled: bool | None = None
    payload_mapping: PayloadMapping | None = None


class MonitorCreate(MonitorFields):
    name: str = Field(min_length=1, max_length=200)
    heartbeat_interval_seconds: int | None = Field(DEFAULT_INTERVAL_SECONDS, ge=1, le=MAX_INTERVAL_SECONDS)
    grace_seconds: int = Field(DEFAULT_GRACE_SECONDS, ge=0, le=MAX_GRACE_SECONDS)
    alerts_enabled: bool = True


# Fields whose change the ingest's cached ping settings must notice (see `config_rev`).
PING_SETTINGS = {"secret", "payload_mapping", "heartbeat_interval_seconds", "grace_seconds", "name"}


def new_monitor(tenant_id: str, fields: MonitorCreate, now: datetime) -> dict:
    return {
        "_id": new_id("mon"),
        "tenant_id": tenant_id,
        "name": fields.name,
        "token": new_token(),
        "secret": fields.secret,
        "heartbeat_interval_seconds": fields.heartbeat_interval_seconds,
        "grace_seconds": fields.grace_seconds,
        "alerts_enabled": fields.alerts_enabled,
        "payload_mapping": fields.payload_mapping.model_dump() if fields.payload_mapping else None,
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
        "pending": [],
        "created_at": now,
        "updated_at": now,
    }
