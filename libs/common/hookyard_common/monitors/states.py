"""A monitor's states and what moves it between them: pure rules, no I/O.

    new ──ping──▶ up ──interval passes──▶ late ──grace passes──▶ down
                  ▲ ◀──────────────────── ping ◀──────────────────┘
    any state ◀──▶ degraded / down / up, as pushed by a ping
    any state ──pause──▶ paused ──resume──▶ new

- `new`: created (or resumed) and not pinged since; it has no deadline, so it
  never goes down on its own (the first ping starts the clock).
- A ping refreshes the deadlines: `late_at` = ping + interval, `deadline` =
  ping + interval + grace. An `up` monitor past `late_at` is `late`; any
  monitor that is `up`, `late` or `degraded` past its `deadline` is `down`.
  A `degraded` monitor is not marked late (that would hide its degradation).
  With a grace of 0 an up monitor goes straight to down.
- A monitor with a cron schedule expects its next ping at the expression's
  next time after the last ping (schedule.py), then the same grace.
- A monitor without an interval or a schedule (push-only) has no deadline at all.
- A `start` opens a run with its own deadline (`run_deadline`, runs.py): a
  monitor in any state but paused or down whose run is not finished by then
  goes `down`. A `log` changes nothing but the record of the last ping.
- `paused` ignores pings (they are still recorded) until resumed.

Each change is one flip record, an incident opened on `down`/`degraded`
(one incident spans degraded ⇄ down) and resolved on `up` (or on pause), and
for up/late/degraded/down an event `monitor.<state>`, unless the alert rules
(monitors/alerting.py: thresholds, maintenance, flap damping) hold it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hookyard_common.monitors.alerting import AlertState
from hookyard_common.monitors.schedule import Cron, next_expected
from hookyard_common.operational_events import (
    MONITOR_DEGRADED,
    MONITOR_DOWN,
    MONITOR_LATE,
    MONITOR_UP,
)
from hookyard_common.schemas import MonitorState, sortable_id

ALERT_EVENT_TYPES = {
    MonitorState.up: MONITOR_UP,
    MonitorState.late: MONITOR_LATE,
    MonitorState.degraded: MONITOR_DEGRADED,
    MonitorState.down: MONITOR_DOWN,
}
TROUBLE = {MonitorState.degraded, MonitorState.down}
# States a passed deadline turns into `down`.
WATCHED = {MonitorState.up, MonitorState.late, MonitorState.degraded}
# States an open run's deadline does not change: paused ignores its jobs, down is down already.
RUN_IGNORED = {MonitorState.paused, MonitorState.down}
SEVERITY = {
    MonitorState.down: "high",
    MonitorState.degraded: "medium",
    MonitorState.late: "low",
    MonitorState.up: "low",
}


@dataclass(frozen=True)
class Snapshot:
    """What a change is decided on; the version makes the write conditional on it."""

    id: str
    tenant_id: str
    state: MonitorState
    version: int
    open_incident_id: str | None = None
    last_ping_at: datetime | None = None
    late_at: datetime | None = None
    deadline: datetime | None = None
    # What the alert rules decide on (thresholds, maintenance, flapping: monitors/alerting.py).
    alerting: AlertState = field(default_factory=AlertState)
    # The open run (runs.py).
    run_started_at: datetime | None = None
    run_deadline: datetime | None = None

    FIELDS = {
        "tenant_id": 1,
        "state": 1,
        "version": 1,
        "open_incident_id": 1,
        "last_ping_at": 1,
        "late_at": 1,
        "deadline": 1,
        **AlertState.FIELDS,
        "run_started_at": 1,
        "run_deadline": 1,
    }

    @classmethod
    def of(cls, doc: dict) -> Snapshot:
        return cls(
            id=doc["_id"],
            tenant_id=doc["tenant_id"],
            state=MonitorState(doc["state"]),
            version=doc["version"],
            open_incident_id=doc.get("open_incident_id"),
            last_ping_at=doc.get("last_ping_at"),
            late_at=doc.get("late_at"),
            deadline=doc.get("deadline"),
            alerting=AlertState.of(doc),
            run_started_at=doc.get("run_started_at"),
            run_deadline=doc.get("run_deadline"),
        )


def deadlines(
    at: datetime, interval_seconds: int | None, grace_seconds: int, cron: Cron | None = None
) -> dict[str, datetime]:
    """The fields a ping at `at` sets: empty for a push-only monitor.

    `due_at` (the scanner's indexed field) is the earliest moment the monitor
    needs looking at: when it would turn late.
    """
    late_at = next_expected(at, interval_seconds, cron)
    if late_at is None:
        return {}
    return {"late_at": late_at, "deadline": late_at + timedelta(seconds=grace_seconds), "due_at": late_at}


DEADLINE_FIELDS = ("late_at", "deadline", "due_at")


def ping_target(current: MonitorState, requested: MonitorState | None) -> MonitorState | None:
    """The state a ping moves the monitor to; None when it stays where it is."""
    if current == MonitorState.paused or requested is None or requested == current:
        return None
    return requested


def expiry(snapshot: Snapshot, now: datetime) -> MonitorState | None:
    """What a due monitor becomes now: `down`, `late`, or None (nothing to flip)."""
    if snapshot.state in WATCHED and snapshot.deadline is not None and snapshot.deadline <= now:
        return MonitorState.down
    if snapshot.state == MonitorState.up and snapshot.late_at is not None and snapshot.late_at <= now:
        return MonitorState.late
    return None


def next_due(snapshot: Snapshot, now: datetime) -> datetime | None:
    """When a due monitor that does not flip needs looking at again (None: not until a ping)."""
    due = [snapshot.deadline] if snapshot.state in WATCHED and snapshot.deadline is not None else []
    if snapshot.run_deadline is not None and snapshot.state not in RUN_IGNORED:
        due.append(snapshot.run_deadline)  # an open run's
    later = [moment for moment in due if moment > now]
    return min(later) if later else None


@dataclass(frozen=True)
class Planned:
    """One change as a MongoDB write: conditional filter, update, and its outbox entry."""

    filter: dict
    update: dict
    entry: dict


def plan(
    snapshot: Snapshot,
    to: MonitorState,
    at: datetime,
    *,
    reason: str,
    message: str | None = None,
    metadata: dict[str, Any] | None = None,
    also_set: dict | None = None,
    also_unset: tuple[str, ...] = (),
    also_match: dict | None = None,
) -> Planned:
    """The write that moves `snapshot` to `to`, if nobody changed the monitor meanwhile.

    The pending entry pushed in the same write is the outbox: everything the
    change still has to do (flip record, incident, event), done and removed
    by `MonitorChanges.settle`, so a crash after the write loses nothing.
    """
    if to == snapshot.state:
        raise ValueError(f"monitor {snapshot.id} is already {to}")
    incident: dict | None = None
    open_incident = snapshot.open_incident_id
    if to in TROUBLE:
        if open_incident is None:
            open_incident = sortable_id("inc")
            incident = {"op": "open", "id": open_incident}
        else:
            incident = {"op": "update", "id": open_incident}
    elif to in (MonitorState.up, MonitorState.paused) and open_incident is not None:
        incident = {"op": "resolve", "id": open_incident}
        open_incident = None
    flip_id = sortable_id("flp")
    entry = {
        "id": flip_id,
        "event_id": "evt_" + flip_id.removeprefix("flp_"),
        "event_type": ALERT_EVENT_TYPES.get(to),
        "from": snapshot.state.value,
        "to": to.value,
        "at": at,
        "reason": reason,
        "message": message,
        "metadata": metadata or {},
        "incident": incident,
        "last_ping_at": snapshot.last_ping_at,
    }
    fields = {
        "state": to.value,
        "state_changed_at": at,
        "status_message": message,
        "open_incident_id": open_incident,
        **(also_set or {}),
    }
    update: dict = {
        "$set": fields,
        "$inc": {"version": 1},
        "$push": {"pending": entry},
        # The earliest unsettled change: where the heartbeat's outbox sweep looks.
        "$min": {"outbox_at": at},
    }
    if also_unset:
        update["$unset"] = {name: "" for name in also_unset}
    match = {"_id": snapshot.id, "version": snapshot.version, "state": snapshot.state.value, **(also_match or {})}
    return Planned(match, update, entry)
