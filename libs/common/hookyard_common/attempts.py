"""The record of every delivery attempt, written in batches.

Each attempt is one document (request headers without credentials, status,
latency, the first bytes of the response, the reason of a failure). Writers
await their record, so a broker message is acked only once its attempts are
stored, but many attempts share one `insert_many`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .batching import Batcher
from .delivery import AttemptResult
from .schemas import DeliveryTask, new_id
from .store import Store

COLLECTION = "attempts"


def attempt_record(task: DeliveryTask, url: str, result: AttemptResult, at: datetime, retention: timedelta) -> dict:
    return {
        "_id": new_id("att"),
        "message_id": task.message_id,
        "event_id": task.event.id,
        "event_type": task.event.event_type,
        "tenant_id": task.event.tenant_id,
        "endpoint_id": task.endpoint_id,
        "attempt": task.attempt,
        "at": at,
        "expires_at": at + retention,
        "url": url,
        "request_headers": result.request_headers,
        "outcome": result.outcome,
        "reason": result.reason,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "response_body": result.response_body,
    }


class AttemptLog:
    def __init__(self, store: Store, retention: timedelta):
        self.retention = retention
        collection = store[COLLECTION]

        async def write(records: Sequence[dict]) -> list[None]:
            await collection.insert_many(list(records), ordered=False)
            return [None] * len(records)

        self._batcher: Batcher[dict, None] = Batcher(write, max_items=500, max_delay=0.01)

    async def record(self, task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> None:
        await self._batcher.submit(attempt_record(task, url, result, at, self.retention))
