"""Tenants' own events (`POST /v1/events`, the broker), kept so they can be resent.

Provider webhooks are kept in the message log (message_log.py), one document
each, since their provider id is checked for duplicates. Tenants' events
have nothing to check, so they are written in buckets (buckets.py), each as
the exact JSON it was published with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.schemas import Event, utcnow
from hookyard_common.store.buckets import BucketLog, Record, unwound
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.retention import Retention

COLLECTION = "events"
FIELD = "events"

# Buckets are found by the events they hold, or by time for a listener's catch-up.
INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("events.id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
    ),
    retired=("retention_ttl",),  # on a per-bucket `expires_at`: a changed retention would only reach new buckets
    retention=Retention("last_at", "message_retention_days"),
)


class EventLog:
    def __init__(self, store: Store):
        self._log = BucketLog(store[COLLECTION], FIELD)

    async def record(self, event: Event, published: bytes) -> None:
        fields = {"id": event.id, "event_type": event.event_type, "json": published}
        await self._log.add(Record(event.tenant_id, utcnow(), 256 + len(published), fields))

    async def flush(self) -> None:
        await self._log.flush()


async def logged(store: Store, tenant_id: str, event_id: str) -> dict | None:
    """The event's record: `json` (None for a stub, buckets.stub, or an erased payload), `payload_erased_at`."""
    pipeline = [
        *unwound(FIELD, {"tenant_id": tenant_id, "events.id": event_id}, {"id": event_id}),
        {"$limit": 1},
    ]
    found = await (await store[COLLECTION].aggregate(pipeline)).to_list()
    return found[0] if found else None


async def find(store: Store, tenant_id: str, event_id: str) -> Event | None:
    found = await logged(store, tenant_id, event_id)
    return Event.from_bytes(found["json"]) if found and found["json"] is not None else None


async def erase_payload(store: Store, tenant_id: str, event_id: str, at: datetime) -> datetime | None:
    """Erase a logged event's JSON, keeping its id and type; when it was first erased (None: unknown).

    Each update erases one copy per bucket (the positional `$`): a redelivered event may be logged twice.
    """
    unerased = {
        "tenant_id": tenant_id,
        FIELD: {"$elemMatch": {"id": event_id, "payload_erased_at": {"$exists": False}}},
    }
    erasing = {"$set": {f"{FIELD}.$.json": None, f"{FIELD}.$.payload_erased_at": at}}
    while (await store[COLLECTION].update_many(unerased, erasing)).modified_count:
        pass
    found = await logged(store, tenant_id, event_id)
    return None if found is None else found.get("payload_erased_at")


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
