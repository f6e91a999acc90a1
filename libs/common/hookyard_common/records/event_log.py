"""Tenants' own events (`POST /v1/events`, the broker), kept so they can be resent.

Provider webhooks are kept in the message log (message_log.py), one document
each, since their provider id is checked for duplicates. Tenants' events
have nothing to check, so they are written in buckets (buckets.py), each as
the exact JSON it was published with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.schemas import Event, utcnow
from hookyard_common.store.buckets import BucketLog, Record, unwound
from hookyard_common.store.client import CollectionIndexes, Store

COLLECTION = "events"
FIELD = "events"

# Buckets are found by the events they hold, or by time for a listener's catch-up.
INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("events.id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ),
)


class EventLog:
    def __init__(self, store: Store, retention: timedelta):
        self._log = BucketLog(store[COLLECTION], FIELD, retention)

    async def record(self, event: Event, published: bytes) -> None:
        fields = {"id": event.id, "event_type": event.event_type, "json": published}
        await self._log.add(Record(event.tenant_id, utcnow(), 256 + len(published), fields))

    async def flush(self) -> None:
        await self._log.flush()


async def find(store: Store, tenant_id: str, event_id: str) -> Event | None:
    pipeline = [
        *unwound(FIELD, {"tenant_id": tenant_id, "events.id": event_id}, {"id": event_id}),
        {"$limit": 1},
    ]
    found = await (await store[COLLECTION].aggregate(pipeline)).to_list()
    # A stub (buckets.stub) has no JSON: the event could not be stored.
    return Event.from_bytes(found[0]["json"]) if found and found[0]["json"] is not None else None


async def logged_between(
    store: Store, tenant_id: str, since: datetime, until: datetime
) -> AsyncIterator[tuple[datetime, Event]]:
    """The tenant's events logged from `since` to `until`, oldest first, with when (a listener's catch-up).

    The time is their bucket's (when the dispatcher logged them; a bucket
    spans a fraction of a second), so the edges are approximate: readers
    drop what they have already seen.
    """
    buckets = (
        store[COLLECTION]
        .find({"tenant_id": tenant_id, "last_at": {"$gte": since}, "first_at": {"$lt": until}})
        .sort("first_at", 1)
    )
    async for bucket in buckets:
        for record in bucket[FIELD]:
            if record["json"] is not None:  # else a stub: the event could not be stored
                yield bucket["first_at"], Event.from_bytes(record["json"])
