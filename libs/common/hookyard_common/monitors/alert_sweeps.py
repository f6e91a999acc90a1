"""The heartbeat's alert sweeps: reminders while a monitor stays down, `monitor.stable`, and
the state a maintenance window kept quiet, once the window is over.

Both are found like due monitors, by a range read on a sparse index
(`renotify_at`, `stable_at`, `maintenance_until`: only monitors that have one
cost anything), and
both are one conditional write matching the time that was read: the write
moves the time on (or clears it) and pushes the alert onto the monitor's
outbox, so with any number of heartbeat replicas each reminder interval and
each settling is announced once. A reminder that falls due while nobody
scanned is sent once, not as a burst: the next one keeps the interval's grid.
In a maintenance window, and while flapping, the time moves on silently.
When a window ends on a monitor whose state is not the one last announced
(it went down during the window and stayed down), that state is announced
once, with reason `maintenance_over`; one that came back changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hookyard_common.monitors import maintenance
from hookyard_common.monitors.alerting import HELD_BACK, notice
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.monitors.states import ALERT_EVENT_TYPES
from hookyard_common.operational_events import MONITOR_DOWN, MONITOR_STABLE
from hookyard_common.schemas import MonitorState, utcnow
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

# What a sweep reads of a monitor: enough to build the alert's outbox entry.
FIELDS = {
    "state": 1,
    "state_changed_at": 1,
    "last_ping_at": 1,
    "renotify_at": 1,
    "renotify_seconds": 1,
    "stable_at": 1,
    "flapping_since": 1,
    "flap_window_seconds": 1,
    "maintenance": 1,
    "maintenance_until": 1,
    "unannounced_from": 1,
}
# The flap bookkeeping a settled monitor starts again without.
FLAP_FIELDS = ("flapping_since", "stable_at", "recent_flips")


class AlertSweeps:
    def __init__(self, store: Store, changes: MonitorChanges, clock: Callable[[], datetime] = utcnow):
        self.monitors = store[COLLECTION]
        self.changes = changes
        self.clock = clock

    async def remind(self, limit: int) -> int:
        """A `monitor.down` reminder for each monitor still down a `renotify_seconds` after the last."""
        now, sent = self.clock(), 0
        for doc in await self._due("renotify_at", now, limit):
            every = doc.get("renotify_seconds")
            if doc["state"] != MonitorState.down.value or not every:
                await self.monitors.update_one(
                    {"_id": doc["_id"], "renotify_at": doc["renotify_at"]}, {"$unset": {"renotify_at": ""}}
                )
                continue
            interval = timedelta(seconds=every)
            following = doc["renotify_at"] + interval * ((now - doc["renotify_at"]) // interval + 1)
            quiet = doc.get("flapping_since") is not None
            since = doc["state_changed_at"].isoformat(timespec="seconds")
            entry = notice(doc, MONITOR_DOWN, "reminder", f"still down since {since}", now)
            sent += await self._announce(
                doc,
                {"state": MonitorState.down.value, "renotify_at": doc["renotify_at"]},
                {"$set": {"renotify_at": following}},
                None if quiet else entry,
                now,
            )
        return sent

    async def stabilize(self, limit: int) -> int:
        """`monitor.stable` for each flapping monitor that kept its state a whole window."""
        now, sent = self.clock(), 0
        for doc in await self._due("stable_at", now, limit):
            window = doc.get("flap_window_seconds")
            message = f"no state change for {window} s; {doc['state']}"
            entry = notice(doc, MONITOR_STABLE, "stable", message, now)
            sent += await self._announce(
                doc, {"stable_at": doc["stable_at"]}, {"$unset": dict.fromkeys(FLAP_FIELDS, "")}, entry, now
            )
        return sent

    async def after_maintenance(self, limit: int) -> int:
        """The state a finished maintenance window kept quiet, when it is not the one last announced."""
        now, sent = self.clock(), 0
        for doc in await self._due("maintenance_until", now, limit):
            unchanged = {"maintenance_until": doc["maintenance_until"], "state": doc["state"]}
            window = maintenance.active(doc.get("maintenance") or [], now)
            if window is not None:  # another window holds on: wait for its end
                await self._announce(
                    doc, unchanged, {"$set": {"maintenance_until": maintenance.ends(window, now)}}, None, now
                )
                continue
            event_type = ALERT_EVENT_TYPES.get(MonitorState(doc["state"]))
            # A monitor first pinged in the window was announced as nothing yet: `up` is no news for it.
            before = doc.get("unannounced_from")
            last_told = MonitorState.up.value if before == MonitorState.new.value else before
            changed = doc["state"] != last_told and doc.get("flapping_since") is None
            since = doc["state_changed_at"].isoformat(timespec="seconds")
            message = f"{doc['state']} since {since}, during maintenance"
            entry = notice(doc, event_type, "maintenance_over", message, now) if changed and event_type else None
            sent += await self._announce(doc, unchanged, {"$unset": dict.fromkeys(HELD_BACK, "")}, entry, now)
        return sent

    async def _due(self, field: str, now: datetime, limit: int) -> list[dict]:
        return await self.monitors.find({field: {"$lte": now}}, FIELDS).sort(field, 1).limit(limit).to_list()

    async def _announce(self, doc: dict, unchanged: dict, update: dict, entry: dict | None, now: datetime) -> int:
        """Apply `update` if the monitor still matches `unchanged`, with `entry` onto its outbox; 1 if published."""
        if entry is not None and maintenance.active(doc.get("maintenance") or [], now) is None:
            update = {**update, "$push": {"pending": entry}, "$min": {"outbox_at": now}}
        else:
            entry = None
        written = await self.monitors.update_one({"_id": doc["_id"], **unchanged}, update)
        if not written.modified_count or entry is None:
            return 0
        try:
            await self.changes.settle(doc["_id"])
        except Exception:  # written to the outbox: the sweep publishes it later
            log.warning("could not settle an alert yet", extra={"monitor_id": doc["_id"]}, exc_info=True)
        return 1
