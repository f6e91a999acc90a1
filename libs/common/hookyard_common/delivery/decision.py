"""What becomes of a delivery task: one pure function from what happened to the next action.

    endpoint disabled                      → DeadLetter(endpoint_disabled)
    endpoint paused until T                → Defer(until T, not counted)
    endpoint busy                          → Defer(twice as long as the last time in a row)
    2xx                                    → Delivered (recovered if it took more than one try)
    410                                    → Disable the endpoint (the task goes no further)
    failure that ended the endpoint's run  → DeadLetter(endpoint_disabled)
    failure, a retry left                  → RetryAt(T, tier) per the endpoint's policy
    failure, none left                     → DeadLetter(the failure's reason), exhausted

The worker (worker.py) finds out what happened and carries the action out;
this module reads no clock, no database and no broker, so every branch is a
unit test (tests/delivery/test_decision.py). The endpoint's own health is
kept by health.py, which needs the database to count failures across
replicas and to change the endpoint exactly once: its verdict on a failure
(`Attempted.disabled_endpoint`) is an input here, not a rule repeated. The
delay arithmetic (jitter, `Retry-After`, penalties) is scheduler.py's, the
tiers and the deferral back-off broker/tiers.py's; the action carries the
task as it is handed on, so what a retry or a deferral changes in it is
decided here too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from hookyard_common.broker.tiers import deferral_delay, tier_for
from hookyard_common.core.settings import Settings
from hookyard_common.delivery.attempt import AttemptResult
from hookyard_common.delivery.endpoints import RetryPolicy
from hookyard_common.delivery.scheduler import next_delay
from hookyard_common.schemas import DeliveryTask

#: Dead-letter reason of a task whose endpoint is disabled (before or by its attempt).
DISABLED_ENDPOINT_REASON = "endpoint_disabled"
#: Dead-letter reason of a task whose tenant an operator disabled: replayable once it is enabled.
TENANT_DISABLED_REASON = "tenant_disabled"
#: Why an endpoint that answered 410 is disabled.
GONE_REASON = "the endpoint answered 410 Gone"


@dataclass(frozen=True)
class RetryRules:
    """The operator's part of the decision (settings); the endpoint's part is its RetryPolicy."""

    tiers_ms: tuple[int, ...]
    jitter: float
    retry_after_cap: float
    min_penalty: float
    deferral_max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryRules:
        return cls(
            tiers_ms=tuple(settings.retry_tiers_ms),
            jitter=settings.retry_jitter,
            retry_after_cap=settings.retry_after_max_seconds,
            min_penalty=settings.retry_min_penalty_seconds,
            deferral_max_seconds=settings.deferral_max_seconds,
        )

    def tier(self, seconds: float) -> int:
        """The tier queue (its delay in ms) a task waiting `seconds` goes to."""
        return tier_for(seconds * 1000, self.tiers_ms)


# What happened to the task: its endpoint stood in the way, or it was attempted.


@dataclass(frozen=True)
class Inactive:
    """The endpoint, or its whole tenant, was disabled before this task's turn."""

    reason: str = DISABLED_ENDPOINT_REASON


@dataclass(frozen=True)
class Paused:
    """The endpoint's circuit is open (health.py): the task waits until `until`."""

    until: datetime


@dataclass(frozen=True)
class Busy:
    """The endpoint's slots, its rate or its tenant's share of the pool were taken."""


@dataclass(frozen=True)
class Attempted:
    """The attempt's result under the endpoint's policy, and whether the health keeper disabled
    the endpoint on this failure (its run of failures reached the threshold)."""

    result: AttemptResult
    policy: RetryPolicy
    disabled_endpoint: bool = False


Happened = Inactive | Paused | Busy | Attempted


# The next action.


@dataclass(frozen=True)
class Delivered:
    """Done. `recovered`: earlier attempts failed, or it is a replay (the tenant hears of it)."""

    recovered: bool
    replayed: bool


@dataclass(frozen=True)
class OnTier:
    """The task waits on the broker: `task`, due at `when`, goes to the `tier_ms` tier queue
    and hops on from tier to tier until it is due."""

    task: DeliveryTask
    tier_ms: int

    @property
    def when(self) -> datetime:
        return self.task.due_at


@dataclass(frozen=True)
class RetryAt(OnTier):
    """Attempt again: `task` is the next attempt."""

    kind: ClassVar[str] = "retry"


@dataclass(frozen=True)
class Defer(OnTier):
    """Wait without it counting as an attempt; `kind` says why (metrics, logs)."""

    kind: Literal["paused", "deferred", "held"]


@dataclass(frozen=True)
class DeadLetter:
    """No more attempts. `exhausted`: the retry policy ran out (the tenant hears of it)."""

    task: DeliveryTask
    reason: str
    exhausted: bool = False


@dataclass(frozen=True)
class Disable:
    """The endpoint is to be disabled; the task goes no further (410 Gone)."""

    reason: str


Action = Delivered | RetryAt | Defer | DeadLetter | Disable


def decide(
    task: DeliveryTask,
    happened: Happened,
    rules: RetryRules,
    now: datetime,
    rng: random.Random = random._inst,  # noqa: SLF001 - the module's shared generator
) -> Action:
    """The next action for `task` after `happened`, at `now`. `rng` draws the jitter (seed it to test)."""
    if isinstance(happened, Inactive):
        return DeadLetter(task, happened.reason)
    if isinstance(happened, Paused):
        wait = (happened.until - now).total_seconds()
        return Defer(task.model_copy(update={"due_at": happened.until}), rules.tier(wait), "paused")
    if isinstance(happened, Busy):
        return put_off(task, "deferred", rules, now)
    return _after_attempt(task, happened, rules, now, rng)


def put_off(task: DeliveryTask, kind: Literal["deferred", "held"], rules: RetryRules, now: datetime) -> Defer:
    """Not attempted through no fault of the endpoint: busy (`deferred`), or a dependency failed
    during the task (`held`, broker/outages.py). Each time in a row waits twice as long, so a
    saturated endpoint's backlog does not circle through the broker every second."""
    delay = deferral_delay(task.deferrals, min(rules.tiers_ms) / 1000, rules.deferral_max_seconds)
    later = task.model_copy(update={"deferrals": task.deferrals + 1, "due_at": now + timedelta(seconds=delay)})
    return Defer(later, rules.tier(delay), kind)


def _after_attempt(
    task: DeliveryTask, attempted: Attempted, rules: RetryRules, now: datetime, rng: random.Random
) -> Action:
    result = attempted.result
    if result.outcome == "success":
        return Delivered(recovered=task.attempt > 1 or task.replay, replayed=task.replay)
    if result.outcome == "gone":
        return Disable(GONE_REASON)
    failed = task.model_copy(update={"last_failure": result.reason})
    if attempted.disabled_endpoint:
        return DeadLetter(failed, DISABLED_ENDPOINT_REASON)
    delay = next_delay(
        attempted.policy,
        task.attempt,
        result,
        jitter=rules.jitter,
        retry_after_cap=rules.retry_after_cap,
        min_penalty=rules.min_penalty,
        rng=rng,
    )
    if delay is None:
        return DeadLetter(failed, result.reason, exhausted=True)
    # The deferral count starts again once the task has been attempted.
    retry = failed.model_copy(
        update={"attempt": task.attempt + 1, "deferrals": 0, "due_at": now + timedelta(seconds=delay)}
    )
    return RetryAt(retry, rules.tier(delay))
