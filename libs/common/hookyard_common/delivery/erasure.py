"""Erasing a payload on request (data protection): everywhere Hookyard stores it, keeping the metadata.

A message's or event's payload lives in its log record (message_log.py's
body and headers, event_log.py's JSON), in its dead letters' tasks, and,
echoed perhaps, in what endpoints answered (attempt_log.py's response
bodies). `erase` clears each of them, keeping ids, times, types, outcomes
and reasons, and marks the records `payload_erased_at`; it is idempotent.

Copies already on the broker cannot be edited: a delivery of the event
waiting on a retry tier is **dropped** when it comes due, not sent (counted
by `hookyard_erased_deliveries_dropped_total`), since the log says the
payload is erased. What cannot be reached is documented in docs/delivery.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter

from hookyard_common.delivery import attempt_log, dead_letters
from hookyard_common.records import event_log, message_log
from hookyard_common.records.message_log import COLLECTION as MESSAGES
from hookyard_common.schemas import DeliveryTask
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

DROPPED = Counter(
    "hookyard_erased_deliveries_dropped_total",
    "Deliveries waiting on the broker whose payload was erased meanwhile: dropped, not sent.",
)


@dataclass(frozen=True)
class Erasure:
    """What one erasure found: when the payload was first erased, and the dead letters it cleared now."""

    kind: str  # "message" (a provider's webhook) or "event" (a tenant's own)
    payload_erased_at: datetime
    dead_letters: int


async def erase(store: Store, tenant_id: str, event_id: str, at: datetime) -> Erasure | None:
    """Erase the payload of the tenant's message or event `event_id`; None if its log has no such record."""
    kind = "message"
    erased_at = await message_log.erase_payload(store, tenant_id, event_id, at)
    if erased_at is None:
        kind = "event"
        erased_at = await event_log.erase_payload(store, tenant_id, event_id, at)
    if erased_at is None:
        return None
    # The log first: from then on a due retry is dropped, so retries add no dead letter or answer after this.
    cleared = await dead_letters.erase_payloads(store, tenant_id, event_id, erased_at)
    await attempt_log.erase_responses(store, tenant_id, event_id)
    return Erasure(kind, erased_at, cleared)


async def is_erased(store: Store, task: DeliveryTask) -> bool:
    """Whether the task's payload was erased since it was queued (one indexed read in its log)."""
    event = task.event
    if event.inbound is not None:  # a provider's webhook, in the message log
        found = await store[MESSAGES].find_one(
            {"_id": event.id, "tenant_id": event.tenant_id}, {"payload_erased_at": 1}
        )
        return found is not None and "payload_erased_at" in found
    logged = await event_log.logged(store, event.tenant_id, event.id)
    return logged is not None and "payload_erased_at" in logged


async def dropped(store: Store, task: DeliveryTask) -> bool:
    """A due delivery of an erased payload: counted and dropped instead of sent."""
    if not await is_erased(store, task):
        return False
    DROPPED.inc()
    log.info("payload erased; delivery dropped", extra={"event_id": task.event.id, "message_id": task.message_id})
    return True
