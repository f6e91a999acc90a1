"""Dead letters: deliveries whose last attempt failed, kept replayable.

Each is recorded in MongoDB (the copy the API lists and replays) and also
published to the `hookyard.dead` queue for operators.
"""

from __future__ import annotations

from datetime import datetime

from .schemas import DeliveryTask
from .store import Store

COLLECTION = "dead_letters"


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
            }
        },
        upsert=True,
    )


async def claim_for_replay(
    store: Store, message_id: str, tenant_id: str, at: datetime, replay_id: str | None = None
) -> dict | None:
    """Mark one dead letter as being replayed; None if it is not dead (unknown, or already in flight).

    The conditional update is what keeps two replays of the same message
    (two clicks, two replicas) from putting it in flight twice. `replay_id`
    names the bulk replay it belongs to, so its progress can be counted.
    """
    return await store[COLLECTION].find_one_and_update(
        {"_id": message_id, "tenant_id": tenant_id, "state": "dead"},
        {"$set": {"state": "replaying", "replayed_at": at, "replay_id": replay_id}},
    )


def replay_task(record: dict, at: datetime) -> DeliveryTask:
    """The task to send again: a fresh schedule, the same webhook-id."""
    task = DeliveryTask.model_validate(record["task"])
    return task.model_copy(update={"attempt": 1, "due_at": at, "last_failure": None, "replay": True})


async def resolved(store: Store, message_id: str) -> None:
    await store[COLLECTION].delete_one({"_id": message_id, "state": "replaying"})
