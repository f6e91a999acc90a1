"""Applying a monitor's state changes exactly once, and carrying out their consequences.

A change is one conditional update (`monitor_states.plan`): it matches only
the state and version it was decided on, so when two heartbeat replicas, or
a replica and a ping, race for the same change, exactly one write wins and
the others match nothing.

The same write appends the change to the monitor's `pending` list (an
outbox). `settle` then writes the flip record, opens/updates/resolves the
incident, publishes the `monitor.*` event (with the broker's confirm), and
only then removes the entry. Whoever settles first holds a lease on the
monitor's outbox (`outbox_owner`, `outbox_lease`), so two replicas never
publish the same change; a process that dies mid-way leaves the entry, and
the heartbeat's sweep (`settle_due`) finishes it once the lease has run
out. Flip and incident writes are idempotent (their ids are in the entry);
the event keeps its id, so the rare re-publication after a crash carries
the same `webhook-id` to receivers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.monitors import alert_context, alerting
from hookyard_common.monitors.history import FLIPS, INCIDENTS
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.monitors.states import SEVERITY, Planned, Snapshot, plan
from hookyard_common.schemas import Event, MonitorState, MonitorStatus, new_id, utcnow
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

FLIPS_TOTAL = Counter("hookyard_monitor_flips_total", "Monitor state changes, by the state entered.", ["state"])
ALERTS_TOTAL = Counter("hookyard_monitor_alerts_total", "monitor.* events published, by event type.", ["event_type"])

# Time a settler has to finish a monitor's pending changes before another may take over.
LEASE_SECONDS = 30.0
# A monitor's outbox bookkeeping, cleared once nothing is pending.
OUTBOX_FIELDS = ("outbox_at", "outbox_lease", "outbox_owner")


class MonitorChanges:
    def __init__(self, store: Store, broker: Broker, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.broker = broker
        self.clock = clock
        self.monitors = store[COLLECTION]
        self.owner = new_id("own")  # this process, as holder of outbox leases

    async def apply(self, snapshot: Snapshot, to: MonitorState, at: datetime, **details) -> dict | None:
        """Make the change if the monitor is still as `snapshot` says; its outbox entry, else None.

        `details` are `plan`'s keyword arguments (reason, message, metadata, ...).
        """
        planned: Planned = plan(snapshot, to, at, **details)
        # The alert rules mark the entry and add their bookkeeping to the same conditional write.
        update, entry = alerting.shape(
            snapshot.alerting, snapshot.state, snapshot.late_at, planned.update, planned.entry
        )
        planned = Planned(planned.filter, update, entry)
        result = await self.monitors.update_one(planned.filter, planned.update)
        if not result.modified_count:
            return None
        FLIPS_TOTAL.labels(to.value).inc()
        log.info(
            "monitor state changed",
            extra={
                "monitor_id": snapshot.id,
                "from": snapshot.state.value,
                "to": to.value,
                "reason": details.get("reason"),
            },
        )
        return planned.entry

    async def settle(self, monitor_id: str) -> bool:
        """Carry out the monitor's pending changes, in order; False when another process holds them."""
        doc = await self._claim(monitor_id)
        if doc is None:
            return False
        while True:
            for entry in doc.get("pending") or []:
                await self._carry_out(doc, entry)
                await self.monitors.update_one({"_id": monitor_id}, {"$pull": {"pending": {"id": entry["id"]}}})
            released = await self.monitors.update_one(
                {"_id": monitor_id, "outbox_owner": self.owner, "pending": {"$size": 0}},
                {"$unset": {name: "" for name in OUTBOX_FIELDS}},
            )
            if released.modified_count:
                return True
            # Changes arrived while we worked (or the lease was lost): go on while still ours.
            doc = await self.monitors.find_one_and_update(
                {"_id": monitor_id, "outbox_owner": self.owner},
                {"$set": {"outbox_lease": self.clock() + timedelta(seconds=LEASE_SECONDS)}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return True

    async def settle_due(self, limit: int) -> int:
        """The sweep: settle monitors whose changes are pending and unclaimed (or whose settler died)."""
        now = self.clock()
        due = (
            await self.monitors.find({"outbox_at": {"$lte": now}}, {"_id": 1})
            .sort("outbox_at", 1)
            .limit(limit)
            .to_list()
        )
        settled = 0
        for doc in due:
            try:
                settled += await self.settle(doc["_id"])
            except Exception:
                log.warning(
                    "could not settle a monitor's changes; will retry", extra={"monitor_id": doc["_id"]}, exc_info=True
                )
        return settled

    async def _claim(self, monitor_id: str) -> dict | None:
        now = self.clock()
        return await self.monitors.find_one_and_update(
            {
                "_id": monitor_id,
                "outbox_at": {"$exists": True},
                "$or": [{"outbox_lease": {"$exists": False}}, {"outbox_lease": {"$lte": now}}],
            },
            {"$set": {"outbox_owner": self.owner, "outbox_lease": now + timedelta(seconds=LEASE_SECONDS)}},
            return_document=ReturnDocument.AFTER,
        )

    async def _carry_out(self, monitor: dict, entry: dict) -> None:
        if entry.get("kind") != alerting.NOTICE:  # a reminder or `stable` notice changed no state
            await self._record_flip(monitor, entry)
        incident = entry.get("incident")
        if incident is not None:
            await self._incident(monitor, entry, incident)
        if entry.get("event_type") and monitor.get("alerts_enabled", True):
            await self._publish(monitor, entry)

    async def _record_flip(self, monitor: dict, entry: dict) -> None:
        record = {
            "_id": entry["id"],
            "monitor_id": monitor["_id"],
            "tenant_id": monitor["tenant_id"],
            "from": entry["from"],
            "to": entry["to"],
            "at": entry["at"],
            "reason": entry["reason"],
            "message": entry.get("message"),
            # Recorded during a maintenance window: not alerted (monitors/maintenance.py).
            "maintenance": entry.get("maintenance", False),
        }
        with contextlib.suppress(DuplicateKeyError):  # written before a crash: once is enough
            await self.store[FLIPS].insert_one(record)

    async def _incident(self, monitor: dict, entry: dict, incident: dict) -> None:
        incidents = self.store[INCIDENTS]
        if incident["op"] == "open":
            record = {
                "_id": incident["id"],
                "monitor_id": monitor["_id"],
                "tenant_id": monitor["tenant_id"],
                "state": "open",
                "status": entry["to"],
                "worst_status": entry["to"],
                "opened_at": entry["at"],
                "resolved_at": None,
                "reason": entry["reason"],
                "message": entry.get("message"),
            }
            with contextlib.suppress(DuplicateKeyError):  # opened before a crash: once is enough
                await incidents.insert_one(record)
        elif incident["op"] == "update":
            update: dict = {"$set": {"status": entry["to"]}}
            if entry["to"] == MonitorState.down.value:
                update["$set"]["worst_status"] = entry["to"]
            await incidents.update_one({"_id": incident["id"], "state": "open"}, update)
        else:
            resolution = "paused" if entry["to"] == MonitorState.paused.value else "recovered"
            await incidents.update_one(
                {"_id": incident["id"], "state": "open"},
                {"$set": {"state": "resolved", "resolved_at": entry["at"], "resolution": resolution}},
            )

    async def _publish(self, monitor: dict, entry: dict) -> None:
        to = MonitorState(entry["to"])
        status = MonitorStatus(
            monitor_id=monitor["_id"],
            tenant_id=monitor["tenant_id"],
            monitor_name=monitor.get("name"),
            status=to,
            previous_status=MonitorState(entry["from"]),
            reason=entry["reason"],
            message=entry.get("message"),
            metadata=entry.get("metadata") or {},
            incident_id=(entry.get("incident") or {}).get("id"),
            last_ping_at=entry.get("last_ping_at"),
            at=entry["at"],
            **alert_context.details(monitor, entry),
        )
        event = Event(
            id=entry["event_id"],
            tenant_id=monitor["tenant_id"],
            event_type=entry["event_type"],
            payload=status.model_dump(mode="json", exclude={"schema_version"}),
            occurred_at=entry["at"],
            severity=alerting.EVENT_SEVERITY.get(entry["event_type"], SEVERITY[to]),
        )
        await self.broker.publish(
            event.to_bytes(), routing_key=topology.routing_key(event.tenant_id, event.event_type), message_id=event.id
        )
        ALERTS_TOTAL.labels(event.event_type).inc()
