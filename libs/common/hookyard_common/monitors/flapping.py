"""Flap damping: a monitor that changes state too often raises one alert, not a storm.

A monitor with `flap_threshold` K keeps the times of its last K+1 alerted
changes (`recent_flips`). The change that makes more than K of them fall
within `flap_window_seconds` is announced as `monitor.flapping` instead of
`monitor.<state>`; from then on changes are recorded (flips, incidents) but
not alerted, and each pushes `stable_at` one window further. When a whole
window passes without a change, the heartbeat announces `monitor.stable` with
the state the monitor settled in (monitors/alert_sweeps.py). The bookkeeping
is part of the change's own conditional write, so racing replicas damp once.
Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hookyard_common.operational_events import MONITOR_FLAPPING

if TYPE_CHECKING:
    from hookyard_common.monitors.alerting import AlertState


@dataclass(frozen=True)
class Damping:
    """The alert a change raises once damped, and the write that keeps count."""

    event_type: str | None
    damped: bool = False
    update: dict = field(default_factory=dict)


def damp(alerting: AlertState, at: datetime, event_type: str | None) -> Damping:
    """What a change at `at`, which would raise `event_type`, raises under flap damping."""
    threshold = alerting.flap_threshold
    if event_type is None or threshold is None:
        return Damping(event_type)
    window = timedelta(seconds=alerting.flap_window_seconds)
    counted = {"$push": {"recent_flips": {"$each": [at], "$slice": -(threshold + 1)}}}
    stays = {"$set": {"stable_at": at + window}}
    if alerting.flapping_since is not None:
        return Damping(None, True, {**counted, **stays})
    recent = [flip for flip in alerting.recent_flips if flip > at - window]
    if len(recent) + 1 > threshold:
        return Damping(MONITOR_FLAPPING, True, {**counted, "$set": {**stays["$set"], "flapping_since": at}})
    return Damping(event_type, False, counted)
