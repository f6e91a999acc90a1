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
                # A disabled endpoint's messages can be retried once it is enabled again.
                "can_retry": True,
            }
        },
        upsert=True,
    )
