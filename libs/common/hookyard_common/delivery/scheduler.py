"""When the next attempt happens after a failed one.

Delays come from the endpoint's retry policy, spread by jitter, lengthened
by an endpoint's `Retry-After` (up to a cap) and by a minimum penalty after
a timeout or a 429. The wait itself happens on the broker (`broker/tiers.py`).
"""

from __future__ import annotations

import random

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
