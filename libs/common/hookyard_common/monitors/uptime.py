"""Uptime from a monitor's flips: how long it spent in each state over a window.

Computed from the state changes, not by counting checks, so it is exact
whatever the ping rate. Time spent `new` or `paused` is not monitored time;
`down` is downtime; `up`, `late` and `degraded` count as up (degraded time
is reported beside the percentage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookyard_common.schemas import MonitorState

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
UNMONITORED = {MonitorState.new, MonitorState.paused}


@dataclass(frozen=True)
class Flip:
    at: datetime
    to: MonitorState


def seconds_in_states(
    flips: Iterable[Flip], start: datetime, end: datetime, state_at_start: MonitorState
) -> dict[MonitorState, float]:
    """Seconds spent in each state between `start` and `end`, given the flips in that span (oldest first)."""
    spent = {state: 0.0 for state in MonitorState}
    state, since = state_at_start, start
    for flip in flips:
        if flip.at <= since:
            state = flip.to
            continue
        if flip.at >= end:
            break
        spent[state] += (flip.at - since).total_seconds()
        state, since = flip.to, flip.at
    spent[state] += max(0.0, (end - since).total_seconds())
    return spent


def summary(spent: dict[MonitorState, float]) -> dict:
    monitored = sum(seconds for state, seconds in spent.items() if state not in UNMONITORED)
    down = spent[MonitorState.down]
    return {
        "percent": round(100 * (monitored - down) / monitored, 3) if monitored else None,
        "monitored_seconds": round(monitored, 3),
        "down_seconds": round(down, 3),
        "degraded_seconds": round(spent[MonitorState.degraded], 3),
    }


def uptime(flips: list[Flip], created_at: datetime, now: datetime) -> dict[str, dict]:
    """Per window (24h, 7d, 30d): percent up (None with no monitored time) and the seconds behind it.

    `flips` must be oldest first and reach back to the longest window's start
    (the last flip before it gives the state the window starts in).
    """
    result = {}
    for name, length in WINDOWS.items():
        start = max(now - length, created_at)
        before = [f for f in flips if f.at <= start]
        state_at_start = before[-1].to if before else MonitorState.new
        result[name] = summary(seconds_in_states((f for f in flips if f.at > start), start, now, state_at_start))
    return result
