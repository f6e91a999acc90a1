"""What an alert says about why: a sentence for people, and the fields behind it.

Every `monitor.*` event carries `why` (one human sentence naming the monitor,
what happened and since when) beside the facts it is made of: `missed_since`
(when the ping that never came was expected), `last_ping_at`, `last_body`
(the last ping's body, cut to ALERT_BODY_CHARS) and `last_run_seconds` (the
last run's duration, for job-runner monitors). They are read from the monitor
as it is when the alert is settled; the sentence is written here, once, for
every kind of alert. Pure, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hookyard_common.operational_events import MONITOR_FLAPPING, MONITOR_STABLE

#: How much of the last ping's body an alert carries.
ALERT_BODY_CHARS = 1_000


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


def why(monitor: dict, entry: dict, missed_since: datetime | None) -> str:
    """The alert in one sentence."""
    name = monitor.get("name") or monitor["_id"]
    to, reason, message = entry["to"], entry["reason"], entry.get("message")
    said = f": {message}" if message and reason == "ping" else ""
    if entry.get("event_type") == MONITOR_FLAPPING:
        return (
            f"{name} is flapping: it changed state more than {monitor.get('flap_threshold')} times within "
            f"{monitor.get('flap_window_seconds')} s (now {to}); no more alerts until it is stable"
        )
    if entry.get("event_type") == MONITOR_STABLE:
        return f"{name} is stable again: no change for {monitor.get('flap_window_seconds')} s; it is {to}"
    if reason == "maintenance_over":
        return f"{name} is {to}, since {_when(monitor.get('state_changed_at'))}, during maintenance that has ended"
    if reason == "reminder":
        return f"{name} is still down, since {_when(monitor.get('state_changed_at'))}"
    if reason == "no_ping":
        missed = f"no ping since {_when(entry.get('last_ping_at'))}, expected by {_when(missed_since)}"
        periods = entry.get("streak") or 0
        counted = f" ({periods} periods missed)" if periods > 1 else ""
        return f"{name} is {to}: {missed}{counted}"
    if reason == "run_overdue":  # the message says when the run started and was due to finish
        return f"{name} is {to}: a run {message}"
    if reason == "ping":
        streak = entry.get("streak") or 0
        counted = f" ({streak} in a row)" if streak > 1 else ""
        return f"{name} is {to}: its ping said {to}{counted}{said}"
    return f"{name} is {to}"


def details(monitor: dict, entry: dict) -> dict[str, Any]:
    """The alert's `why` and the facts behind it, as MonitorStatus fields."""
    body = monitor.get("last_body")
    missed_since = monitor.get("missed_since") or (monitor.get("late_at") if entry["reason"] == "no_ping" else None)
    return {
        "why": why(monitor, entry, missed_since),
        "missed_since": missed_since,
        "last_body": body[:ALERT_BODY_CHARS] if isinstance(body, str) else None,
        "last_body_truncated": isinstance(body, str) and len(body) > ALERT_BODY_CHARS,
        "last_run_seconds": monitor.get("last_run_seconds"),
        "last_ping_kind": monitor.get("last_ping_kind"),
    }
