"""The record of every delivery attempt, written in batches.

Each attempt is one document (request headers without credentials, status,
latency, the first bytes of the response, the reason of a failure), and many
attempts share one `insert_many`. Writing is off the delivery path: the
message is acked without waiting for its record (a record is history, not
the message), the buffer is bounded, and shutdown flushes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from .batching import WriteBehind
from .delivery import AttemptResult
from .schemas import DeliveryTask, new_id
from .store import Store

log = logging.getLogger(__name__)

COLLECTION = "attempts"
MAX_PENDING = 10_000


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

        async def write(records: Sequence[dict]) -> None:
            await collection.insert_many(list(records), ordered=False)

        def lost(exc: BaseException, records: Sequence[dict]) -> None:
            log.error("could not record delivery attempts", extra={"count": len(records), "error": repr(exc)})

        self._writer: WriteBehind[dict] = WriteBehind(write, max_pending=MAX_PENDING, on_error=lost)

    async def record(self, task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> None:
        await self._writer.add(attempt_record(task, url, result, at, self.retention))

    async def flush(self) -> None:
        await self._writer.drain()
