"""Idempotency keys: which event holds a tenant's key, for the idempotency window.

One record per (tenant, key), under a unique index, so exactly one claim of a
key wins across every ingest replica and dispatcher. `POST /v1/events` with a
key claims it with an insert *before* publishing, holding the request's
fingerprint and the answer it will give; a retry finds the record and gets
that answer (or a conflict when its body differs). The record names the
event that holds the key, and the dispatcher's intake (`settle`) lets only
that event through: an event published twice with one key, straight onto
the broker or by a claim taken over, is delivered once.

A claim is `pending` until the broker confirmed the event (the ingest marks
it `accepted`, and so does the dispatcher when the event reaches it, which
proves the publish). When the publish fails the claim is marked `failed`,
not deleted: the retry takes it over and publishes, yet if the failed
publish did reach the broker after all, the dispatcher finds that event
named, accepts it, and the retry is answered with its answer instead. A
claim left pending by a replica that died mid-publish is taken over by the
same request once older than the lease. Records expire with the window: the
TTL index deletes them (about once a minute), and until then an expired record
counts as absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hookyard_common.schemas import Event, utcnow
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.isolated_writes import insert_isolated

COLLECTION = "idempotency_keys"

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        # The tenant in the key: no tenant can claim another's key first.
        IndexModel([("tenant_id", ASCENDING), ("key", ASCENDING)], unique=True, name="tenant_key"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="window_ttl"),
    ),
)

#: Claimed, the publish not yet confirmed.
PENDING = "pending"
#: The event is durable on the broker.
ACCEPTED = "accepted"
#: The publish failed (as far as the ingest knows): any request may take the key over.
FAILED = "failed"


@dataclass(frozen=True)
class Holder:
    """The claim that holds a key: its event, and what the request that made it was told."""

    event_id: str
    state: str
    #: SHA-256 of the claiming request; None when the event came straight from the broker.
    fingerprint: str | None
    answer: dict[str, Any] | None


def _free(now: datetime) -> list[dict]:
    """A record whose key anyone may take: past its window, or its publish failed."""
    return [{"expires_at": {"$lte": now}}, {"state": FAILED}]


def _holder(record: dict) -> Holder:
    return Holder(record["event_id"], record["state"], record.get("fingerprint"), record.get("answer"))


class Contended(Exception):
    """The key was released and claimed again between each read: the request may be retried."""


class IdempotencyKeys:
    """The ingest's side: claim a key before publishing, then accept or release it."""

    def __init__(self, store: Store, window: timedelta, lease: timedelta):
        self.collection = store[COLLECTION]
        self.window = window
        self.lease = lease

    def _record(self, tenant_id: str, key: str, fingerprint: str, event_id: str, answer: dict) -> dict:
        now = utcnow()
        return {
            "tenant_id": tenant_id,
            "key": key,
            "event_id": event_id,
            "state": PENDING,
            "fingerprint": fingerprint,
            "answer": answer,
            "claimed_at": now,
            "expires_at": now + self.window,
        }

    async def claim(self, tenant_id: str, key: str, fingerprint: str, event_id: str, answer: dict) -> Holder | None:
        """None when this request now holds the key; else the claim that does."""
        for _ in range(3):  # a record released or swept between two reads: claim again
            try:
                await self.collection.insert_one(self._record(tenant_id, key, fingerprint, event_id, answer))
                return None
            except DuplicateKeyError:
                pass
            now = utcnow()
            # Past its window, failed, or pending for the same request longer than any publish takes: ours now.
            takeover = {
                "tenant_id": tenant_id,
                "key": key,
                "$or": [
                    *_free(now),
                    {"state": PENDING, "fingerprint": fingerprint, "claimed_at": {"$lte": now - self.lease}},
                ],
            }
            replaced = await self.collection.replace_one(
                takeover, self._record(tenant_id, key, fingerprint, event_id, answer)
            )
            if replaced.matched_count:
                return None
            held = await self.collection.find_one({"tenant_id": tenant_id, "key": key})
            if held is not None:
                return _holder(held)
        raise Contended(f"the idempotency key {key!r} changed hands while it was being claimed")

    async def accept(self, tenant_id: str, key: str, event_id: str) -> bool:
        """Mark the claim accepted once the broker confirmed; False when it is no longer this event's."""
        result = await self.collection.update_one(
            {"tenant_id": tenant_id, "key": key, "event_id": event_id}, {"$set": {"state": ACCEPTED}}
        )
        return result.matched_count == 1

    async def release(self, tenant_id: str, key: str, event_id: str) -> None:
        """The publish failed: mark the claim failed, unless the dispatcher already saw the event (it was published)."""
        await self.collection.update_one(
            {"tenant_id": tenant_id, "key": key, "event_id": event_id, "state": PENDING}, {"$set": {"state": FAILED}}
        )


def _settled_record(event: Event, key: str, now: datetime, window: timedelta) -> dict:
    return {
        "tenant_id": event.tenant_id,
        "key": key,
        "event_id": event.id,
        "state": ACCEPTED,
        "claimed_at": now,
        "expires_at": now + window,
    }


class Unsettled(Exception):
    """This event's key cannot be stored: the message says why."""


async def settle(store: Store, events: Sequence[Event], window: timedelta) -> list[bool | Unsettled]:
    """The dispatcher's side, for a batch of events that carry a key: per event, True when it
    holds its key (claimed now, or already by the ingest for this very event), False when
    another event of its tenant holds it within the window (a repeat: drop it).

    As in the message log, a redelivered event (crash before ack) finds its own claim and
    counts as fresh: at least once.
    """
    collection = store[COLLECTION]
    now = utcnow()
    keyed = [(event, event.idempotency_key or "") for event in events]
    outcomes = await insert_isolated(collection, [_settled_record(e, key, now, window) for e, key in keyed])
    settled: list[bool | Unsettled] = []
    for (event, key), refused in zip(keyed, outcomes, strict=True):
        if refused is None:
            settled.append(True)
        elif refused.duplicate:
            settled.append(await _holds(collection, event, key, now, window))
        else:
            settled.append(Unsettled(refused.reason))
    return settled


async def _holds(collection: AsyncCollection, event: Event, key: str, now: datetime, window: timedelta) -> bool:
    """Whether `event` holds its key that another record already names: its own claim (now
    accepted: the ingest's publish is proven), or one it may take (past its window, failed)."""
    scope = {"tenant_id": event.tenant_id, "key": key}
    own = await collection.find_one_and_update(
        {**scope, "event_id": event.id}, {"$set": {"state": ACCEPTED}}, return_document=ReturnDocument.AFTER
    )
    if own is not None:
        return True
    taken = await collection.replace_one({**scope, "$or": _free(now)}, _settled_record(event, key, now, window))
    return taken.matched_count == 1
