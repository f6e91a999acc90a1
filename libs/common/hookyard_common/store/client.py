"""MongoDB access on PyMongo's native async client, with indexes ensured at start-up.

Each collection's indexes are declared once, in `INDEXES`; `ensure_indexes`
creates what is missing and is a no-op for what exists, so every replica may
run it on every start. An index that is replaced is listed in `RETIRED_INDEXES`
and dropped by name after its successor is built: an existing database
migrates on start-up, and a replica still running the old code never finds
the collection without either.
"""

from __future__ import annotations

import asyncio

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

INDEXES: dict[str, list[IndexModel]] = {
    # Tenants authenticate with an API key; only its SHA-256 is stored.
    "tenants": [IndexModel([("api_key_hash", ASCENDING)], unique=True, name="api_key_hash")],
    "sources": [IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant")],
    # The dispatcher loads a tenant's active endpoints per event (cached).
    "endpoints": [IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant")],
    # Buckets of delivery attempts (see attempts.py): found by the events they
    # hold (multikey), or by time for a tenant's figures.
    "attempts": [
        IndexModel([("tenant_id", ASCENDING), ("attempts.event_id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ],
    # Buckets of tenants' own events (see event_log.py), found by the events they hold,
    # or by time for a listener's catch-up.
    "events": [
        IndexModel([("tenant_id", ASCENDING), ("events.id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ],
    "dead_letters": [
        IndexModel([("tenant_id", ASCENDING), ("dead_at", DESCENDING)], name="tenant_recent"),
        IndexModel([("endpoint_id", ASCENDING), ("dead_at", DESCENDING)], name="endpoint_recent"),
        # A bulk replay's progress: how many of its messages are still in flight, or dead again.
        IndexModel([("replay_id", ASCENDING), ("state", ASCENDING)], name="replay", sparse=True),
        # Replays whose claim lapsed before their publish was confirmed (a crash), to take over.
        IndexModel([("state", ASCENDING), ("lease_until", ASCENDING)], name="replay_lease"),
    ],
    "dead_letter_replays": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl")],
    # The received-message log. The unique (tenant, source, provider id) triple is what
    # recognises a provider's retry of a message already accepted; the tenant in it means
    # no tenant's message can ever claim a key of another tenant's source.
    "messages": [
        IndexModel(
            [("tenant_id", ASCENDING), ("source_id", ASCENDING), ("dedup_key", ASCENDING)],
            unique=True,
            partialFilterExpression={"dedup_key": {"$type": "string"}},
            name="tenant_source_dedup_key",
        ),
        IndexModel(
            [("tenant_id", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)],
            name="tenant_recent",
        ),
        IndexModel(
            [("source_id", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)],
            name="source_recent",
        ),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ],
    # Monitors: pings find theirs by token; the heartbeat finds the due ones and the
    # unsettled changes by range reads on sparse indexes (only monitors that have them).
    "monitors": [
        IndexModel([("token", ASCENDING)], unique=True, name="token"),
        IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),
        IndexModel([("due_at", ASCENDING)], sparse=True, name="due"),
        IndexModel([("outbox_at", ASCENDING)], sparse=True, name="outbox"),
        IndexModel([("state", ASCENDING)], name="state"),
    ],
    "monitor_checks": [
        IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ],
    # The ingest's shared rate-limit counters, one per key and window (see hookyard_ingest.edge.rate_leases).
    "rate_counters": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="window_ttl")],
    "monitor_flips": [
        IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent")
    ],
    "monitor_incidents": [
        IndexModel([("monitor_id", ASCENDING), ("opened_at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent")
    ],
}

#: Indexes replaced by one of `INDEXES`, dropped by name once their successor exists, so an
#: existing database migrates on the first start-up of the new code.
RETIRED_INDEXES: dict[str, list[str]] = {
    # Unique per (source, dedup key) without the tenant: one tenant could pre-claim another's keys.
    "messages": ["source_dedup_key"],
}

#: MongoDB's error code for dropping an index that does not exist (already migrated).
INDEX_NOT_FOUND = 27


class Store:
    def __init__(self, client: AsyncMongoClient, database: str):
        self.client = client
        self.db: AsyncDatabase = client[database]

    @classmethod
    async def connect(cls, uri: str, database: str, *, timeout_seconds: float = 5.0) -> Store:
        client: AsyncMongoClient = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=int(timeout_seconds * 1000),
            appname="hookyard",
        )
        store = cls(client, database)
        try:
            await store.ping()
        except BaseException:
            await client.close()
            raise
        return store

    def __getitem__(self, collection: str) -> AsyncCollection:
        return self.db[collection]

    async def ping(self, timeout_seconds: float | None = None) -> None:
        await asyncio.wait_for(self.client.admin.command("ping"), timeout_seconds)

    async def ensure_indexes(self) -> None:
        for collection, indexes in INDEXES.items():
            await self.db[collection].create_indexes(indexes)
        for collection, names in RETIRED_INDEXES.items():
            for name in names:
                await self._drop_index(collection, name)

    async def _drop_index(self, collection: str, name: str) -> None:
        try:
            await self.db[collection].drop_index(name)
        except OperationFailure as exc:
            if exc.code != INDEX_NOT_FOUND and "index not found" not in str(exc).lower():
                raise

    async def close(self) -> None:
        await self.client.close()
