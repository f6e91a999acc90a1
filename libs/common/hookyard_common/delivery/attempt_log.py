"""The record of every delivery attempt: request headers without credentials,
status, latency, the first bytes of the response, the reason of a failure.

Written in buckets (see buckets.py): a thousand deliveries cost a handful of
inserts, not a thousand; `attempts.event_id` is indexed (multikey), so one
event's attempts are still found directly.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.delivery.attempt import AttemptResult
from hookyard_common.schemas import DeliveryTask, new_id
from hookyard_common.store.buckets import BucketLog, Record, unwound
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.retention import Retention

COLLECTION = "attempts"
FIELD = "attempts"

# Buckets are found by the events they hold (multikey), or by time for a tenant's figures.
INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("attempts.event_id", ASCENDING)], name="event"),
        IndexModel([("tenant_id", ASCENDING), ("last_at", DESCENDING)], name="tenant_recent"),
    ),
    retired=("retention_ttl",),  # on a per-bucket `expires_at`: a changed retention would only reach new buckets
    retention=Retention("last_at", "message_retention_days"),
)


def attempt_record(task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> Record:
    headers = result.request_headers
    body = result.response_body
    fields = {
        "id": new_id("att"),
        "message_id": task.message_id,
        "event_id": task.event.id,
        "event_type": task.event.event_type,
        "endpoint_id": task.endpoint_id,
        "attempt": task.attempt,
        "at": at,
        "url": url,
        "request_headers": headers,
        "outcome": result.outcome,
        "reason": result.reason,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "response_body": body,
    }
    size = 512 + len(url) + len(body or "") + sum(len(k) + len(v) for k, v in headers.items())
    return Record(task.event.tenant_id, at, size, fields)


class AttemptLog:
    def __init__(self, store: Store):
        self._log = BucketLog(store[COLLECTION], FIELD)

    async def record(self, task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> None:
        await self._log.add(attempt_record(task, url, result, at))

    async def flush(self) -> None:
        await self._log.flush()


async def of_event(
    store: Store, tenant_id: str, event_id: str, message_id: str | None = None, limit: int = 1000
) -> list[dict]:
    """Every recorded attempt to deliver one event (to one endpoint: `message_id`), oldest first."""
    wanted = {"event_id": event_id} if message_id is None else {"event_id": event_id, "message_id": message_id}
    pipeline = [
        *unwound(FIELD, {"tenant_id": tenant_id, "attempts.event_id": event_id}, wanted),
        {"$sort": {"at": 1, "attempt": 1}},
        {"$limit": limit},
    ]
    return await (await store[COLLECTION].aggregate(pipeline)).to_list()


async def page_of_event(
    store: Store, tenant_id: str, event_id: str, limit: int, after: tuple[datetime, str] | None = None
) -> list[dict]:
    """Up to `limit` attempts of one event, oldest first by (at, id), after the attempt `after`."""
    wanted: dict = {"event_id": event_id}
    if after is not None:
        at, attempt_id = after
        wanted["$or"] = [{"at": {"$gt": at}}, {"at": at, "id": {"$gt": attempt_id}}]
    pipeline = [
        *unwound(FIELD, {"tenant_id": tenant_id, "attempts.event_id": event_id}, wanted),
        {"$sort": {"at": 1, "id": 1}},
        {"$limit": limit},
    ]
    return await (await store[COLLECTION].aggregate(pipeline)).to_list()


async def made_since(store: Store, task: DeliveryTask, start: datetime) -> bool:
    """Whether an attempt of this message was recorded at or after `start`."""
    wanted = {"message_id": task.message_id, "at": {"$gte": start}}
    pipeline = [*unwound(FIELD, {"tenant_id": task.event.tenant_id, "attempts.event_id": task.event.id}, wanted)]
    return bool(await (await store[COLLECTION].aggregate([*pipeline, {"$limit": 1}])).to_list())


async def erase_responses(store: Store, tenant_id: str, event_id: str) -> None:
    """Forget what the endpoints answered to an event whose payload is erased: an answer may echo it."""
    answered = {"tenant_id": tenant_id, FIELD: {"$elemMatch": {"event_id": event_id, "response_body": {"$ne": None}}}}
    # One attempt per bucket and update (the positional `$`), until none is left.
    while (await store[COLLECTION].update_many(answered, {"$set": {f"{FIELD}.$.response_body": None}})).modified_count:
        pass


def since(tenant_id: str, start: datetime) -> list[dict]:
    """Pipeline stages yielding a tenant's attempts made at or after `start`, one document each."""
    return unwound(FIELD, {"tenant_id": tenant_id, "last_at": {"$gte": start}}, {"at": {"$gte": start}})
