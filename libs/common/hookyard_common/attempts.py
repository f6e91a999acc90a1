"""The record of every delivery attempt, written in batches.

Each attempt is one document (request headers without credentials, status,
latency, the first bytes of the response, the reason of a failure), and many
attempts share one `insert_many`. Writing is off the delivery path: the
message is acked without waiting for its record (a record is history, not
the message), the buffer is bounded, and shutdown flushes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from .batching import Batcher
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

        async def write(records: Sequence[dict]) -> list[None]:
            await collection.insert_many(list(records), ordered=False)
            return [None] * len(records)

        self._batcher: Batcher[dict, None] = Batcher(write, max_items=500, max_delay=0.01)
        self._pending: set[asyncio.Task] = set()

    async def record(self, task: DeliveryTask, url: str, result: AttemptResult, at: datetime) -> None:
        if len(self._pending) >= MAX_PENDING:  # the database is behind: wait for it rather than grow
            await self.flush()
        writing = asyncio.create_task(self._write(attempt_record(task, url, result, at, self.retention)))
        self._pending.add(writing)
        writing.add_done_callback(self._pending.discard)

    async def _write(self, record: dict) -> None:
        try:
            await self._batcher.submit(record)
        except Exception:
            log.exception("could not record a delivery attempt", extra={"message_id": record["message_id"]})

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending)
