"""When the next attempt happens, and which broker tier it waits in.

Delays come from the endpoint's retry policy, spread by jitter, lengthened
by an endpoint's `Retry-After` (up to a cap) and by a minimum penalty after
a timeout or a 429. The wait itself happens on the broker: a task goes to
the largest tier queue not longer than its remaining delay, and hops to the
next fitting tier until it is due, so no service holds it in memory.
A task put off because its endpoint is busy is not a failed attempt, but
it backs off too: each deferral in a row waits twice as long, up to a cap,
so a saturated endpoint's backlog does not circle through the broker every
second.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hookyard_common.delivery.attempt import AttemptResult
from hookyard_common.delivery.endpoints import RetryPolicy


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    result: AttemptResult,
    *,
    jitter: float,
    retry_after_cap: float,
    min_penalty: float,
    rng: random.Random = random._inst,  # noqa: SLF001 - the module's shared generator
) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based); None when none are left."""
    delays = policy.delays()
    if attempt > len(delays):
        return None
    delay = delays[attempt - 1]
    if policy.jitter and jitter:
        delay *= 1 + rng.uniform(-jitter, jitter)
    if result.retry_after_seconds is not None:
        delay = max(delay, min(result.retry_after_seconds, retry_after_cap))
    if result.slow_down:
        delay = max(delay, min_penalty)
    return delay


def tier_for(delay_ms: float, tiers_ms: Sequence[int]) -> int:
    """The largest tier not longer than the delay (the smallest tier for short delays)."""
    ordered = sorted(tiers_ms)
    fitting = [tier for tier in ordered if tier <= delay_ms]
    return fitting[-1] if fitting else ordered[0]


def deferral_delay(deferrals: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds a task waits after being put off `deferrals` times in a row before (0: the first time)."""
    return min(first_seconds * 2 ** min(deferrals, 32), max(first_seconds, max_seconds))
