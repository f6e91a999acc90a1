"""Thresholds: down after N consecutive failures or missed periods, up after M successes.

A monitor counts its consecutive signals: `failure_streak` (pings saying
`down`, and periods that passed without a ping) and `success_streak` (pings
saying `up`). A ping's own write updates the counter atomically (`$inc`), so
of two racing failure pings exactly one sees the Nth and makes the change.
A missed period short of `down_after` leaves the monitor `late` and moves its
deadline one period on (the next interval, or the cron schedule's next time
after the one missed, plus the grace); `late_at` stays where the first ping was expected,
which is when the alert says it was missed since. With the defaults (1 and
1) every change is immediate, as before. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hookyard_common.monitors.alerting import AlertState
from hookyard_common.monitors.schedule import next_expected
from hookyard_common.schemas import MonitorState

#: The most consecutive signals a threshold may ask for.
MAX_THRESHOLD = 100
TROUBLE = {MonitorState.degraded, MonitorState.down}


def streak_update(status: MonitorState | None) -> dict:
    """The counters' part of a ping's write: a failure or a success extends its streak and ends the other."""
    if status == MonitorState.down:
        return {"$inc": {"failure_streak": 1}, "$set": {"success_streak": 0}}
    if status == MonitorState.up:
        return {"$inc": {"success_streak": 1}, "$set": {"failure_streak": 0}}
    if status == MonitorState.degraded:  # neither: it breaks both runs
        return {"$set": {"failure_streak": 0, "success_streak": 0}}
    return {}  # unmapped: a sign of life that says nothing about success


def counted(alerting: AlertState, status: MonitorState | None) -> AlertState:
    """The counters after a ping of `status`, given those its write found (`streak_update`)."""
    if status == MonitorState.down:
        return replace(alerting, failure_streak=alerting.failure_streak + 1, success_streak=0)
    if status == MonitorState.up:
        return replace(alerting, success_streak=alerting.success_streak + 1, failure_streak=0)
    if status == MonitorState.degraded:
        return replace(alerting, failure_streak=0, success_streak=0)
    return alerting


def confirmed(current: MonitorState, target: MonitorState, alerting: AlertState) -> bool:
    """Whether enough consecutive pings back a ping's change from `current` to `target`."""
    if target == MonitorState.down:
        return alerting.failure_streak >= alerting.down_after
    if target == MonitorState.up and current in TROUBLE:
        return alerting.success_streak >= alerting.up_after
    return True


def further_period(alerting: AlertState, deadline: datetime) -> dict | None:
    """A missed deadline short of `down_after`: the fields that wait one more period; None: down now."""
    misses = alerting.failure_streak + 1
    if misses >= alerting.down_after:
        return None
    grace = timedelta(seconds=alerting.grace_seconds)
    expected = next_expected(deadline - grace, alerting.interval_seconds, alerting.cron)  # the ping after the missed
    if expected is None:
        return None
    moved = expected + grace
    return {"deadline": moved, "due_at": moved, "failure_streak": misses}
