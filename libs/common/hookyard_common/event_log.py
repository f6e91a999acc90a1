"""Tenants' own events (`POST /v1/events`, the broker), kept so they can be resent.

Provider webhooks are kept in the message log (message_log.py), one document
each, since their provider id is checked for duplicates. Tenants' events
have nothing to check, so they are written in buckets (buckets.py), each as
the exact JSON it was published with.
"""

from __future__ import annotations

from datetime import timedelta

from .buckets import BucketLog, Record, unwound
from .schemas import Event, utcnow
from .store import Store

COLLECTION = "events"
FIELD = "events"


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
    return Event.from_bytes(found[0]["json"]) if found else None
