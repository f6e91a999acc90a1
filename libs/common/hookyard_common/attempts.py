"""The record of every delivery attempt, written in buckets.

Each attempt is one entry (request headers without credentials, status,
latency, the first bytes of the response, the reason of a failure). Entries
are not one document each: what a replica attempted for one tenant within a
short window is written as one bucket document (MongoDB's bucket pattern),
so a thousand deliveries cost a handful of inserts instead of a thousand,
with their `_id`, TTL and oplog entries. A multikey index on
`attempts.event_id` still finds one event's attempts directly.

Writing is off the delivery path: the message is acked without waiting for
its record (a record is history, not the message), the buffer is bounded,
and shutdown flushes it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from .batching import WriteBehind
from .delivery import AttemptResult
from .schemas import DeliveryTask, new_id
from .store import Store

log = logging.getLogger(__name__)

COLLECTION = "attempts"
MAX_PENDING = 10_000
# How long attempts gather before their bucket is written, and how many at most.
BUCKET_SECONDS = 0.1
BUCKET_MAX_ATTEMPTS = 500
# Far below MongoDB's 16 MiB document limit, counting each response body in full.
BUCKET_MAX_BYTES = 4 * 1024 * 1024


def attempt_entry(task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> dict:
    return {
        "id": new_id("att"),
        "message_id": task.message_id,
        "event_id": task.event.id,
        "event_type": task.event.event_type,
        "endpoint_id": task.endpoint_id,
        "attempt": task.attempt,
        "at": at,
        "url": url,
        "request_headers": result.request_headers,
        "outcome": result.outcome,
        "reason": result.reason,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "response_body": result.response_body,
    }


def _approximate_size(entry: dict) -> int:
    headers = entry["request_headers"]
    return 512 + len(entry["response_body"] or "") + sum(len(k) + len(v) for k, v in headers.items())


def buckets(entries: Sequence[tuple[str, dict]], retention: timedelta) -> list[dict]:
    """(tenant_id, entry) pairs as bucket documents: one tenant each, size-capped."""
    by_tenant: dict[str, list[list[dict]]] = defaultdict(lambda: [[]])
    sizes: dict[str, int] = defaultdict(int)
    for tenant_id, entry in entries:
        size = _approximate_size(entry)
        groups = by_tenant[tenant_id]
        if groups[-1] and sizes[tenant_id] + size > BUCKET_MAX_BYTES:
            groups.append([])
            sizes[tenant_id] = 0
        groups[-1].append(entry)
        sizes[tenant_id] += size
    docs = []
    for tenant_id, groups in by_tenant.items():
        for group in groups:
            last = max(entry["at"] for entry in group)
            docs.append(
                {
                    "_id": new_id("atb"),
                    "tenant_id": tenant_id,
                    "first_at": min(entry["at"] for entry in group),
                    "last_at": last,
                    "expires_at": last + retention,
                    "attempts": group,
                }
            )
    return docs


class AttemptLog:
    def __init__(self, store: Store, retention: timedelta):
        collection = store[COLLECTION]

        async def write(entries: Sequence[tuple[str, dict]]) -> None:
            await collection.insert_many(buckets(entries, retention), ordered=False)

        def lost(exc: BaseException, entries: Sequence[tuple[str, dict]]) -> None:
            log.error("could not record delivery attempts", extra={"count": len(entries), "error": repr(exc)})

        self._writer: WriteBehind[tuple[str, dict]] = WriteBehind(
            write, max_items=BUCKET_MAX_ATTEMPTS, max_delay=BUCKET_SECONDS, max_pending=MAX_PENDING, on_error=lost
        )

    async def record(self, task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> None:
        await self._writer.add((task.event.tenant_id, attempt_entry(task, url, result, at)))

    async def flush(self) -> None:
        await self._writer.drain()


async def of_event(store: Store, tenant_id: str, event_id: str, limit: int = 1000) -> list[dict]:
    """Every recorded attempt to deliver one event, oldest first."""
    pipeline = [
        {"$match": {"tenant_id": tenant_id, "attempts.event_id": event_id}},
        {"$unwind": "$attempts"},
        {"$replaceRoot": {"newRoot": "$attempts"}},
        {"$match": {"event_id": event_id}},
        {"$sort": {"at": 1, "attempt": 1}},
        {"$limit": limit},
    ]
    return await (await store[COLLECTION].aggregate(pipeline)).to_list()


def since(tenant_id: str, start: datetime) -> list[dict]:
    """Pipeline stages yielding a tenant's attempts made at or after `start`, one document each."""
    return [
        {"$match": {"tenant_id": tenant_id, "last_at": {"$gte": start}}},
        {"$unwind": "$attempts"},
        {"$replaceRoot": {"newRoot": "$attempts"}},
        {"$match": {"at": {"$gte": start}}},
    ]
