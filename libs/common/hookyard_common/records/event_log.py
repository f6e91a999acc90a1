"""Tenants' own events (`POST /v1/events`, the broker), kept so they can be resent.

Provider webhooks are kept in the message log (message_log.py), one document
each, since their provider id is checked for duplicates. Tenants' events
have nothing to check, so they are written in buckets (buckets.py), each as
the exact JSON it was published with, beside its id, type and when it was logged.

Buckets are written once and never changed, so the search's order (newest
bucket first, each bucket's records last first) is a total order a cursor
can resume exactly, without gaps or repeats, however many replicas write.
Within the fraction of a second that two replicas' buckets overlap, events
may list slightly out of time order; the time filters are exact all the same.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.schemas import Event, utcnow
from hookyard_common.store.buckets import BucketLog, Record, unwound
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.pagination import CursorError
from hookyard_common.store.retention import Retention

COLLECTION = "events"
FIELD = "events"

# Buckets are found by the events they hold, by time (a listener's catch-up, the search),
# or by the types they hold (the search's `event_type`, multikey).
INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("events.id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
        IndexModel(
            [("tenant_id", ASCENDING), ("events.event_type", ASCENDING), ("last_at", DESCENDING)], name="tenant_type"
        ),
    ),
    retired=("retention_ttl",),  # on a per-bucket `expires_at`: a changed retention would only reach new buckets
    retention=Retention("last_at", "message_retention_days"),
)


class EventLog:
    def __init__(self, store: Store):
        self._log = BucketLog(store[COLLECTION], FIELD)

    async def record(self, event: Event, published: bytes) -> None:
        now = utcnow()
        fields = {"id": event.id, "event_type": event.event_type, "at": now, "json": published}
        await self._log.add(Record(event.tenant_id, now, 256 + len(published), fields))

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


@dataclass(frozen=True)
class Logged:
    """One event as the search lists it, and where it sits in the log's order (its cursor)."""

    id: str | None  # None only in a stub whose id could not be stored
    event_type: str | None
    logged_at: datetime
    unstorable: str | None
    position: tuple[datetime, str]  # (its bucket's last_at, "<bucket id>:<index>")


def _resume_point(after: tuple[datetime, str] | None) -> tuple[dict, str | None, int]:
    """The buckets filter for resuming after a cursor, its bucket and the index to resume below."""
    if after is None:
        return {}, None, 0
    at, key = after
    bucket_id, _, index = key.rpartition(":")
    if not bucket_id or not (index.isascii() and index.isdigit()):
        raise CursorError("invalid cursor: use the next_cursor of a previous page")
    return {"$or": [{"last_at": {"$lt": at}}, {"last_at": at, "_id": {"$lte": bucket_id}}]}, bucket_id, int(index)


def _type_test(event_type: str | dict | None) -> Callable[[str | None], bool]:
    """The filter on one record, as MongoDB applied it to its bucket (which holds others too)."""
    if event_type is None:
        return lambda kind: True
    if isinstance(event_type, str):
        return lambda kind: kind == event_type
    pattern = re.compile(event_type["$regex"])
    return lambda kind: kind is not None and pattern.search(kind) is not None


async def newest(
    store: Store,
    tenant_id: str,
    *,
    event_type: str | dict | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
) -> AsyncIterator[Logged]:
    """The tenant's logged events, newest bucket first, whose type matches `event_type` (a
    filter value: a type or a `$regex`, as event_filter.as_query makes) and that were logged
    within [since, until), resuming after the position `after`.

    Buckets are found through `tenant_recent`, or `tenant_type` with a type, and read
    without the events' JSON; the caller stops reading when it has enough.
    """
    resume, resume_bucket, resume_index = _resume_point(after)
    query: dict = {"tenant_id": tenant_id, **resume}
    if event_type is not None:
        query["events.event_type"] = event_type
    fits = _type_test(event_type)
    if since is not None:
        query["last_at"] = {"$gte": since}
    if until is not None:
        query["first_at"] = {"$lt": until}
    projection = {"last_at": 1, "events.id": 1, "events.event_type": 1, "events.at": 1, "events.unstorable": 1}
    buckets = store[COLLECTION].find(query, projection).sort([("last_at", -1), ("_id", -1)]).batch_size(4)
    async for bucket in buckets:
        records = bucket[FIELD]
        top = resume_index if bucket["_id"] == resume_bucket else len(records)
        for index in range(min(top, len(records)) - 1, -1, -1):
            record = records[index]
            at = record.get("at") or bucket["last_at"]  # logged before records carried their time
            kind = record.get("event_type")
            if (since is not None and at < since) or (until is not None and at >= until):
                continue
            if not fits(kind):
                continue
            position = (bucket["last_at"], f"{bucket['_id']}:{index}")
            yield Logged(record.get("id"), kind, at, record.get("unstorable"), position)
