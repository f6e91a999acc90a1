"""Waiting on the broker: which retry tier a delay waits in, and how a put-off message backs off.

A task goes to the largest tier queue not longer than its remaining delay,
and hops to the next fitting tier until it is due, so no service holds it
in memory. A message put off (its endpoint busy, or a dependency away) is
not a failed attempt, but it backs off too: each time in a row waits twice
as long, up to a cap, so a backlog does not circle through the broker every
second.
"""

from __future__ import annotations

from collections.abc import Sequence


def tier_for(delay_ms: float, tiers_ms: Sequence[int]) -> int:
    """The largest tier not longer than the delay (the smallest tier for short delays)."""
    ordered = sorted(tiers_ms)
    fitting = [tier for tier in ordered if tier <= delay_ms]
    return fitting[-1] if fitting else ordered[0]


def deferral_delay(deferrals: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds a task waits after being put off `deferrals` times in a row before (0: the first time)."""
    return min(first_seconds * 2 ** min(deferrals, 32), max(first_seconds, max_seconds))
