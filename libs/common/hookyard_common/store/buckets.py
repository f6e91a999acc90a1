"""Logs written in buckets: many small records of one tenant in one document.

A log that grows by one record per delivery (attempts, tenants' events)
would cost one insert each, with its `_id`, TTL and oplog entries. Instead a
replica gathers records for a short window and writes, per tenant, one
bucket document holding them all (MongoDB's bucket pattern); a multikey
index on the records' ids still finds any one of them directly. Buckets
expire as a whole, their owner's retention after their last record (`last_at`).

Writing is off the caller's path (write-behind): records are history, not
the messages themselves; the buffer is bounded and shutdown flushes it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter
from pymongo.asynchronous.collection import AsyncCollection

from hookyard_common.core.batching import WriteBehind
from hookyard_common.schemas import new_id
from hookyard_common.store.isolated_writes import Refused, encoded, insert_isolated

log = logging.getLogger(__name__)

# How long records gather before their bucket is written, and how many at most.
BUCKET_SECONDS = 0.1
BUCKET_MAX_RECORDS = 500
# Far below MongoDB's 16 MiB document limit.
BUCKET_MAX_BYTES = 4 * 1024 * 1024
MAX_PENDING = 10_000

UNSTORABLE = Counter(
    "hookyard_unstorable_records_total",
    "Log records (attempts, tenants' events) that MongoDB cannot store, kept as stubs with the reason.",
    ["collection"],
)


@dataclass(frozen=True)
class Record:
    tenant_id: str
    at: datetime
    size: int  # approximate, in bytes, to keep buckets well under the document limit
    fields: dict


def bucket_documents(records: Sequence[Record], field: str) -> list[dict]:
    """Records as bucket documents under `field`: one tenant each, size-capped."""
    groups: dict[str, list[list[Record]]] = defaultdict(lambda: [[]])
    sizes: dict[str, int] = defaultdict(int)
    for record in records:
        tenant_groups = groups[record.tenant_id]
        if tenant_groups[-1] and sizes[record.tenant_id] + record.size > BUCKET_MAX_BYTES:
            tenant_groups.append([])
            sizes[record.tenant_id] = 0
        tenant_groups[-1].append(record)
        sizes[record.tenant_id] += record.size
    documents = []
    for tenant_id, tenant_groups in groups.items():
        for group in tenant_groups:
            documents.append(
                {
                    "_id": new_id("bkt"),
                    "tenant_id": tenant_id,
                    "first_at": min(r.at for r in group),
                    "last_at": max(r.at for r in group),
                    field: [r.fields for r in group],
                }
            )
    return documents


def stub(fields: dict, reason: str) -> dict:
    """A record that cannot be stored, kept with its reason: each field that can be stored on
    its own, None for the others (readers find every key)."""
    kept = {key: None if isinstance(encoded({key: value}), Refused) else value for key, value in fields.items()}
    return {**kept, "unstorable": reason}


class BucketLog:
    """Write-behind of records into bucket documents of `collection`, under `field`.

    One record that cannot be stored fails neither the other tenants' buckets (each is its
    own document, written isolated: isolated_writes.py) nor its neighbours in its bucket:
    a refused bucket is written again one record per bucket, and a record still refused
    is kept as a stub with its reason.
    """

    def __init__(self, collection: AsyncCollection, field: str):
        self._collection = collection
        self._field = field

        def lost(exc: BaseException, records: Sequence[Record]) -> None:
            log.error(
                "could not write log records",
                extra={"collection": collection.name, "count": len(records), "error": repr(exc)},
            )

        self._writer: WriteBehind[Record] = WriteBehind(
            self._write, max_items=BUCKET_MAX_RECORDS, max_delay=BUCKET_SECONDS, max_pending=MAX_PENDING, on_error=lost
        )

    async def _write(self, records: Sequence[Record]) -> None:
        documents = bucket_documents(records, self._field)
        outcomes = await insert_isolated(self._collection, documents)
        refused = [(doc, why) for doc, why in zip(documents, outcomes, strict=True) if why is not None]
        if not refused:
            return
        singles = [{**doc, "_id": new_id("bkt"), self._field: [one]} for doc, _ in refused for one in doc[self._field]]
        outcomes = await insert_isolated(self._collection, singles)
        stubs = [
            {**doc, "_id": new_id("bkt"), self._field: [stub(doc[self._field][0], why.reason)]}
            for doc, why in zip(singles, outcomes, strict=True)
            if why is not None
        ]
        UNSTORABLE.labels(self._collection.name).inc(len(stubs))
        for document in stubs:
            reason = document[self._field][0]["unstorable"]
            log.error(
                "log record cannot be stored; kept as a stub",
                extra={"collection": self._collection.name, "reason": reason},
            )
        await insert_isolated(self._collection, stubs)

    async def add(self, record: Record) -> None:
        await self._writer.add(record)

    async def flush(self) -> None:
        await self._writer.drain()


def unwound(field: str, match: dict, record_match: dict) -> list[dict]:
    """Pipeline stages yielding the records (one document each) of the buckets matching
    `match` whose own fields match `record_match`."""
    return [
        {"$match": match},
        {"$unwind": f"${field}"},
        {"$replaceRoot": {"newRoot": f"${field}"}},
        {"$match": record_match},
    ]
