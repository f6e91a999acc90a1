"""What the alert rules read of a monitor, and how they shape a change before it is written.

Three rules stand between a state change and its `monitor.*` alert, each in
its own module: thresholds (thresholds.py: down after N failures, up after M
successes), maintenance windows (maintenance.py: recorded, not alerted) and
flap damping (flapping.py: one `monitor.flapping` instead of a storm). This
module holds their inputs (`AlertState`, read in the same projection as the
monitor's `Snapshot`, so deciding costs no extra read) and `shape`, which
`MonitorChanges.apply` runs on every planned change: it marks the outbox
entry (no alert in maintenance, damped while flapping) and adds the rules'
bookkeeping to the same conditional write, so it is exactly once like the
change itself. It also leaves the heartbeat its later work: the next
reminder while down (`renotify_at`), the end of flapping (`stable_at`) and
the end of a maintenance window that held a change back (`maintenance_until`),
each carried out by monitors/alert_sweeps.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hookyard_common.monitors import flapping, maintenance, schedule
from hookyard_common.monitors.schedule import Cron
from hookyard_common.operational_events import MONITOR_FLAPPING, MONITOR_STABLE
from hookyard_common.schemas import MonitorState, sortable_id

DEFAULT_DOWN_AFTER = 1
DEFAULT_UP_AFTER = 1
DEFAULT_FLAP_WINDOW_SECONDS = 3_600
# What a maintenance window's held-back changes leave for the heartbeat (alert_sweeps.py).
HELD_BACK = ("maintenance_until", "unannounced_from")
# Alert bookkeeping that no longer holds once the monitor is paused or resumed.
RESET_ON_PAUSE = {"failure_streak": 0, "success_streak": 0}
CLEARED_ON_PAUSE = (
    "renotify_at",
    "missed_since",
    "flapping_since",
    "stable_at",
    "recent_flips",
    *HELD_BACK,
)
#: Reasons of a heartbeat's change that is itself one more failure (a missed period, an overrun run).
COUNTED_ON_EXPIRY = ("no_ping", "run_overdue")
#: The outbox entry of an alert that changes no state (a reminder, `monitor.stable`): no flip, no incident.
NOTICE = "notice"
#: Severity of the alerts that are not a state's own (those follow states.SEVERITY).
EVENT_SEVERITY = {MONITOR_FLAPPING: "medium", MONITOR_STABLE: "low"}


@dataclass(frozen=True)
class AlertState:
    """A monitor's alert settings and counters; a field missing from the document takes its default."""

    down_after: int = DEFAULT_DOWN_AFTER
    up_after: int = DEFAULT_UP_AFTER
    failure_streak: int = 0
    success_streak: int = 0
    interval_seconds: int | None = None
    # How the periods thresholds count are spaced: the interval, or the cron schedule (and the grace after each).
    cron: Cron | None = None
    grace_seconds: int = 0
    renotify_seconds: int | None = None
    flap_threshold: int | None = None
    flap_window_seconds: int = DEFAULT_FLAP_WINDOW_SECONDS
    recent_flips: tuple[datetime, ...] = ()
    flapping_since: datetime | None = None
    maintenance: tuple[dict, ...] = ()
    # The state last announced before changes went unannounced in maintenance (None: nothing held back).
    unannounced_from: str | None = None

    FIELDS = {
        "down_after": 1,
        "up_after": 1,
        "failure_streak": 1,
        "success_streak": 1,
        "heartbeat_interval_seconds": 1,
        "schedule": 1,
        "tz": 1,
        "grace_seconds": 1,
        "renotify_seconds": 1,
        "flap_threshold": 1,
        "flap_window_seconds": 1,
        "recent_flips": 1,
        "flapping_since": 1,
        "maintenance": 1,
        "unannounced_from": 1,
    }

    @classmethod
    def of(cls, doc: dict) -> AlertState:
        return cls(
            down_after=doc.get("down_after") or DEFAULT_DOWN_AFTER,
            up_after=doc.get("up_after") or DEFAULT_UP_AFTER,
            failure_streak=doc.get("failure_streak") or 0,
            success_streak=doc.get("success_streak") or 0,
            interval_seconds=doc.get("heartbeat_interval_seconds"),
            cron=schedule.of(doc),
            grace_seconds=doc.get("grace_seconds") or 0,
            renotify_seconds=doc.get("renotify_seconds"),
            flap_threshold=doc.get("flap_threshold"),
            flap_window_seconds=doc.get("flap_window_seconds") or DEFAULT_FLAP_WINDOW_SECONDS,
            recent_flips=tuple(doc.get("recent_flips") or ()),
            flapping_since=doc.get("flapping_since"),
            maintenance=tuple(doc.get("maintenance") or ()),
            unannounced_from=doc.get("unannounced_from"),
        )


def shape(
    alerting: AlertState, state: MonitorState, late_at: datetime | None, update: dict, entry: dict
) -> tuple[dict, dict]:
    """The write and outbox entry of a change from `state`, with the alert rules applied."""
    update = {op: dict(fields) for op, fields in update.items()}
    marked = _marked(alerting, state, late_at, update, dict(entry))
    update["$push"]["pending"] = marked  # the outbox holds the entry as the rules marked it
    return update, marked


def _marked(alerting: AlertState, state: MonitorState, late_at: datetime | None, update: dict, entry: dict) -> dict:
    to, at = MonitorState(entry["to"]), entry["at"]
    if to in (MonitorState.paused, MonitorState.new):
        _add(update, "$set", RESET_ON_PAUSE)
        _add(update, "$unset", dict.fromkeys(CLEARED_ON_PAUSE, ""))
        return entry
    # The consecutive signals behind the change, as counted when it was decided (for the alert's sentence).
    if entry["reason"] in COUNTED_ON_EXPIRY:  # counted in this write, not yet in what was read
        entry["streak"] = alerting.failure_streak + 1
    else:
        entry["streak"] = alerting.failure_streak if to == MonitorState.down else alerting.success_streak
    if to == MonitorState.down:
        if alerting.renotify_seconds:
            _add(update, "$set", {"renotify_at": at + timedelta(seconds=alerting.renotify_seconds)})
        if entry["reason"] == "no_ping" and late_at is not None:
            _add(update, "$set", {"missed_since": late_at})
    elif state == MonitorState.down:
        _add(update, "$unset", {"renotify_at": "", "missed_since": ""})
    window = maintenance.active(list(alerting.maintenance), at)
    if window is not None:
        # Recorded (the flip is marked) but not alerted, and not counted towards flapping; when the
        # window ends, the heartbeat announces the state if it is not the one last announced.
        held = {"maintenance_until": maintenance.ends(window, at)}
        _add(update, "$set", held if alerting.unannounced_from else {**held, "unannounced_from": state.value})
        return {**entry, "event_type": None, "maintenance": True}
    damped = flapping.damp(alerting, at, entry["event_type"])
    for op, fields in damped.update.items():
        _add(update, op, fields)
    if damped.event_type is not None and alerting.unannounced_from is not None:
        _add(update, "$unset", dict.fromkeys(HELD_BACK, ""))  # announced now: nothing is held back any more
    return {**entry, "event_type": damped.event_type, "damped": damped.damped}


def _add(update: dict, op: str, fields: dict) -> None:
    update[op] = {**update.get(op, {}), **fields}


def notice(doc: dict, event_type: str, reason: str, message: str, at: datetime) -> dict:
    """The outbox entry of an alert about the monitor as it is (same shape as a change's, `kind` notice)."""
    entry_id = sortable_id("ntc")
    return {
        "id": entry_id,
        "kind": NOTICE,
        "event_id": "evt_" + entry_id.removeprefix("ntc_"),
        "event_type": event_type,
        "from": doc["state"],
        "to": doc["state"],
        "at": at,
        "reason": reason,
        "message": message,
        "metadata": {},
        "incident": None,
        "last_ping_at": doc.get("last_ping_at"),
    }
