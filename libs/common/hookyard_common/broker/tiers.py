"""Waiting on the broker: which retry tier a delay waits in, and how a put-off message backs off.

A task goes to the largest tier queue not longer than its remaining delay,
and hops to the next fitting tier until it is due, so no service holds it
in memory. A message put off (its endpoint busy, or a dependency away) is
not a failed attempt, but it backs off too: each time in a row waits twice
as long, up to a cap, so a backlog does not circle through the broker every
second.

A tier is a plain queue that keeps no time itself: whoever publishes to one
stamps the moment in `ENTERED_HEADER`, and the retrier's pump (tier_pump.py)
passes each message on to `hookyard.retry.due` once the tier's delay has run
from that moment. Every message of a tier waits the same delay and arrives in
order, so a tier is in due order and its head is always the next one due.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: When a message entered its tier, in milliseconds since the epoch (wall clock: publisher
#: and pump may be on different machines).
ENTERED_HEADER = "x-hookyard-tier-entered"


def tier_for(delay_ms: float, tiers_ms: Sequence[int]) -> int:
    """The largest tier not longer than the delay (the smallest tier for short delays)."""
    ordered = sorted(tiers_ms)
    fitting = [tier for tier in ordered if tier <= delay_ms]
    return fitting[-1] if fitting else ordered[0]


def deferral_delay(deferrals: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds a task waits after being put off `deferrals` times in a row before (0: the first time)."""
    return min(first_seconds * 2 ** min(deferrals, 32), max(first_seconds, max_seconds))


def entering(now_seconds: float) -> dict[str, int]:
    """The header a message published to a tier at `now_seconds` carries."""
    return {ENTERED_HEADER: int(now_seconds * 1000)}


def seconds_left(headers: Mapping[str, Any] | None, tier_ms: int, now_seconds: float) -> float:
    """How long a message of the tier still waits: never more than the tier's delay (a stamp in
    the future, a clock ahead), and none without a usable stamp (it is passed on at once; the
    retrier checks a task's own due time anyway)."""
    entered = (headers or {}).get(ENTERED_HEADER)
    if not isinstance(entered, int) or isinstance(entered, bool):
        return 0.0
    left = entered / 1000 + tier_ms / 1000 - now_seconds
    return min(max(left, 0.0), tier_ms / 1000)
