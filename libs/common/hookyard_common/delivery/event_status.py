"""Where an event's deliveries stand, derived from the attempt log and the dead letters.

Nothing stores a status: it would be one more write per attempt, racing the
attempts themselves. Each message (an event's delivery to one endpoint) is

- `delivered` when its latest attempt succeeded (a resend or a replay that
  succeeded counts, whatever came before);
- `dead` when it has a dead letter waiting (state `dead`) and no later success;
- `failing` when its latest attempt failed and it is not dead: retries are
  pending, or a replay is in flight.

An event is `dead` if any of its messages is, else `failing` if any is, else
`delivered` if it has any message; `pending` when no attempt was recorded yet
(none made yet, or no endpoint subscribes to it). Restricted to one endpoint,
an event's status is that one message's.

Both lookups are one query each for a whole page of events, through the
tenant-scoped indexes `attempts.event` and `dead_letters.tenant_event`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hookyard_common.delivery import attempt_log, dead_letters
from hookyard_common.store.buckets import unwound
from hookyard_common.store.client import Store

Status = Literal["pending", "delivered", "failing", "dead"]
#: Every status, in the order an event's messages outrank each other.
STATUSES: tuple[Status, ...] = ("dead", "failing", "delivered", "pending")


@dataclass
class Deliveries:
    """One event's messages: each endpoint's latest outcome, and which endpoints hold a dead letter."""

    #: endpoint id -> ((when, attempt number), outcome) of its latest attempt
    latest: dict[str, tuple[tuple[datetime, int], str]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)

    @property
    def endpoint_ids(self) -> set[str]:
        return set(self.latest) | self.dead

    def status(self, endpoint_id: str | None = None) -> Status:
        endpoints = self.endpoint_ids if endpoint_id is None else {endpoint_id} & self.endpoint_ids
        return merged(self.message_status(e) for e in endpoints)

    def message_status(self, endpoint_id: str) -> Status:
        latest = self.latest.get(endpoint_id)
        if latest is not None and latest[1] == "success":
            return "delivered"
        return "dead" if endpoint_id in self.dead else "failing"


def merged(statuses: Iterable[Status]) -> Status:
    """An event's status from its messages': the most urgent one, `pending` for none."""
    present = set(statuses)
    return next((s for s in STATUSES if s in present), "pending")


async def deliveries(store: Store, tenant_id: str, event_ids: Sequence[str]) -> dict[str, Deliveries]:
    """The deliveries of each of `event_ids` (of this tenant only), in two queries."""
    found: dict[str, Deliveries] = defaultdict(Deliveries)
    if not event_ids:
        return found
    ids = list(event_ids)
    pipeline = [
        *unwound(
            attempt_log.FIELD, {"tenant_id": tenant_id, "attempts.event_id": {"$in": ids}}, {"event_id": {"$in": ids}}
        ),
        {"$project": {"_id": 0, "event_id": 1, "endpoint_id": 1, "outcome": 1, "at": 1, "attempt": 1}},
    ]
    async for doc in await store[attempt_log.COLLECTION].aggregate(pipeline):
        latest = found[doc["event_id"]].latest
        order = (doc["at"], doc["attempt"])
        current = latest.get(doc["endpoint_id"])
        if current is None or order > current[0]:
            latest[doc["endpoint_id"]] = (order, doc["outcome"])
    letters = store[dead_letters.COLLECTION].find(
        {"tenant_id": tenant_id, "event_id": {"$in": ids}, "state": "dead"}, {"event_id": 1, "endpoint_id": 1}
    )
    async for doc in letters:
        found[doc["event_id"]].dead.add(doc["endpoint_id"])
    return found
