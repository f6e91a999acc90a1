"""Dead letters: deliveries whose last attempt failed, kept replayable.

Each is recorded in MongoDB (the copy the API lists and replays) and also
published to the `hookyard.dead` queue for operators.

A replay claims the record (`dead` → `replaying`) with a **lease**, then
publishes the task and, once the broker confirmed it, drops the lease: from
then on the broker owns the message. A process that dies between claim and
confirm leaves a lease that runs out; any retrier replica's sweep
(`resume_stalled`) takes such a record over with a conditional update and
publishes it, so a replay never stays stuck in `replaying`. The lease is
three publish timeouts: past that, the publish has either been confirmed or
failed. At worst a message whose release was lost is sent twice, with the
same `webhook-id`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import DeliveryTask
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.retention import Retention

COLLECTION = "dead_letters"
#: One record per bulk replay (the ingest's `POST /v1/dead-letters/replay`), so its progress can be counted later.
REPLAY_RECORDS = "dead_letter_replays"

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("dead_at", DESCENDING)], name="tenant_recent"),
        IndexModel([("endpoint_id", ASCENDING), ("dead_at", DESCENDING)], name="endpoint_recent"),
        # A page of events' statuses (delivery/event_status.py): which of them have dead letters.
        IndexModel([("tenant_id", ASCENDING), ("event_id", ASCENDING)], name="tenant_event"),
        # A bulk replay's progress: how many of its messages are still in flight, or dead again.
        IndexModel([("replay_id", ASCENDING), ("state", ASCENDING)], name="replay", sparse=True),
        # Replays whose claim lapsed before their publish was confirmed (a crash), to take over.
        IndexModel([("state", ASCENDING), ("lease_until", ASCENDING)], name="replay_lease"),
    ),
    # A dead letter carries the full payload: it goes after its last failure (a replay that fails again renews it).
    retention=Retention("dead_at", "dead_letter_retention_days"),
)
REPLAY_RECORD_INDEXES = CollectionIndexes(
    REPLAY_RECORDS,
    (),
    retired=("retention_ttl",),  # on a per-record `expires_at`: a changed retention would only reach new records
    retention=Retention("created_at", "dead_letter_replay_retention_days"),
)


async def record(store: Store, task: DeliveryTask, reason: str, at: datetime) -> None:
    """Idempotent per message: a redelivered task updates the same record."""
    await store[COLLECTION].update_one(
        {"_id": task.message_id},
        {
            "$set": {
                "tenant_id": task.event.tenant_id,
                "endpoint_id": task.endpoint_id,
                "event_id": task.event.id,
                "event_type": task.event.event_type,
                "task": task.model_dump(mode="json"),
                "attempts": task.attempt,
                "reason": reason,
                "dead_at": at,
                "state": "dead",
                "lease_until": None,
            }
        },
        upsert=True,
    )


def replay_lease(broker: Broker) -> timedelta:
    return timedelta(seconds=3 * broker.publish_timeout_seconds)


async def claim_for_replay(
    store: Store, message_id: str, tenant_id: str, at: datetime, lease: timedelta, replay_id: str | None = None
) -> dict | None:
    """Mark one dead letter as being replayed; None if it is not dead (unknown, or already in flight).

    The conditional update is what keeps two replays of the same message
    (two clicks, two replicas) from putting it in flight twice; a replay whose
    lease ran out before its publish was confirmed may be claimed again.
    `replay_id` names the bulk replay it belongs to, so its progress can be counted.
    """
    return await store[COLLECTION].find_one_and_update(
        {
            "_id": message_id,
            "tenant_id": tenant_id,
            "payload_erased_at": {"$exists": False},  # nothing left to send
            "$or": [{"state": "dead"}, {"state": "replaying", "lease_until": {"$lte": at}}],
        },
        {"$set": {"state": "replaying", "replayed_at": at, "replay_id": replay_id, "lease_until": at + lease}},
    )


async def requeue(
    store: Store, broker: Broker, message_id: str, tenant_id: str, at: datetime, replay_id: str | None = None
) -> bool:
    """Claim a dead letter and send it to the retrier; False if it could not be claimed."""
    record = await claim_for_replay(store, message_id, tenant_id, at, replay_lease(broker), replay_id)
    if record is None:
        return False
    task = replay_task(record, at)
    await broker.publish(task.to_bytes(), exchange="", routing_key=topology.RETRY_DUE_QUEUE, message_id=task.message_id)
    # Confirmed: the broker owns it now. Only if the claim is still ours (no one took it over).
    await store[COLLECTION].update_one({"_id": message_id, "replayed_at": at}, {"$set": {"lease_until": None}})
    return True


async def resume_stalled(store: Store, broker: Broker, now: datetime, limit: int = 100) -> int:
    """Take over replays whose claim lapsed before their publish was confirmed; how many were sent."""
    lapsed = (
        store[COLLECTION]
        .find(
            {"state": "replaying", "lease_until": {"$lte": now}, "payload_erased_at": {"$exists": False}},
            {"tenant_id": 1, "replay_id": 1},
        )
        .limit(limit)
    )
    resumed = 0
    async for doc in lapsed:
        resumed += await requeue(store, broker, doc["_id"], doc["tenant_id"], now, doc.get("replay_id"))
    return resumed


def replay_task(record: dict, at: datetime) -> DeliveryTask:
    """The task to send again: a fresh schedule, the same webhook-id."""
    task = DeliveryTask.model_validate(record["task"])
    return task.model_copy(update={"attempt": 1, "due_at": at, "last_failure": None, "replay": True})


async def erase_payloads(store: Store, tenant_id: str, event_id: str, at: datetime) -> int:
    """Drop the task (the whole event) of the event's dead letters, keeping ids, reason and times; how many.

    One being replayed is dead again: its copy in flight is dropped by the retrier (delivery/erasure.py).
    """
    done = await store[COLLECTION].update_many(
        {"tenant_id": tenant_id, "event_id": event_id, "payload_erased_at": {"$exists": False}},
        {"$unset": {"task": ""}, "$set": {"payload_erased_at": at, "state": "dead", "lease_until": None}},
    )
    return done.modified_count


async def resolved(store: Store, message_id: str) -> None:
    await store[COLLECTION].delete_one({"_id": message_id, "state": "replaying"})
