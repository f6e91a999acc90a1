"""The delivery decision table (decision.py), branch by branch: pure, no broker, no database."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from hookyard_common.delivery.attempt import AttemptResult
from hookyard_common.delivery.decision import (
    GONE_REASON,
    Attempted,
    Busy,
    DeadLetter,
    Defer,
    Delivered,
    Disable,
    Inactive,
    Paused,
    RetryAt,
    RetryRules,
    decide,
    put_off,
)
from hookyard_common.delivery.endpoints import RetryPolicy
from hookyard_common.schemas import DeliveryTask, Event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULES = RetryRules(
    tiers_ms=(1_000, 5_000, 30_000, 300_000),
    jitter=0.2,
    retry_after_cap=60.0,
    min_penalty=5.0,
    deferral_max_seconds=60.0,
)
STEADY = RetryPolicy(schedule_seconds=[2, 40], jitter=False)
FAILED = AttemptResult("failure", "http_500", status=500)


EVENT = Event(id="evt_1", tenant_id="ten_1", event_type="user.created", payload={"n": 1})


def task(**fields) -> DeliveryTask:
    """A task with fixed ids, so two built alike compare equal."""
    return DeliveryTask(message_id="msg_1", endpoint_id="ep_1", event=EVENT, due_at=NOW, **fields)


def after(result: AttemptResult, policy: RetryPolicy = STEADY, disabled: bool = False, **fields):
    return decide(task(**fields), Attempted(result, policy, disabled), RULES, NOW)


def test_a_disabled_endpoint_dead_letters_the_task_as_it_is():
    waiting = task(attempt=2)
    assert decide(waiting, Inactive(), RULES, NOW) == DeadLetter(waiting, "endpoint_disabled")
    # A disabled tenant's are dead-lettered under their own reason, to replay once it is enabled.
    assert decide(waiting, Inactive("tenant_disabled"), RULES, NOW) == DeadLetter(waiting, "tenant_disabled")


def test_a_paused_endpoint_defers_until_the_pause_is_over_without_counting():
    until = NOW + timedelta(seconds=90)
    action = decide(task(deferrals=2), Paused(until), RULES, NOW)
    assert isinstance(action, Defer) and action.kind == "paused"
    assert action.when == until and action.task.deferrals == 2
    assert action.tier_ms == 30_000, "the largest tier not longer than the wait"


@pytest.mark.parametrize(
    ("deferrals", "seconds", "tier_ms"),
    [(0, 1.0, 1_000), (1, 2.0, 1_000), (3, 8.0, 5_000), (9, 60.0, 30_000)],
)
def test_a_busy_endpoint_defers_twice_as_long_each_time_in_a_row(deferrals, seconds, tier_ms):
    action = decide(task(deferrals=deferrals), Busy(), RULES, NOW)
    assert isinstance(action, Defer) and action.kind == "deferred"
    assert action.when == NOW + timedelta(seconds=seconds) and action.tier_ms == tier_ms
    assert action.task.deferrals == deferrals + 1 and action.task.attempt == 1


def test_a_task_held_through_an_outage_backs_off_like_a_deferral():
    waiting = task(deferrals=1)
    held = put_off(waiting, "held", RULES, NOW)
    assert held.kind == "held"
    assert decide(waiting, Busy(), RULES, NOW) == Defer(held.task, held.tier_ms, "deferred")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, Delivered(recovered=False, replayed=False)),
        ({"attempt": 3}, Delivered(recovered=True, replayed=False)),
        ({"replay": True}, Delivered(recovered=True, replayed=True)),
    ],
)
def test_a_2xx_is_delivered_and_recovered_after_failures_or_on_replay(fields, expected):
    assert after(AttemptResult("success", "http_200", status=200), **fields) == expected


def test_a_410_disables_the_endpoint():
    assert after(AttemptResult("gone", "http_410", status=410), attempt=2) == Disable(GONE_REASON)


def test_a_failure_that_disabled_the_endpoint_dead_letters_even_with_retries_left():
    action = after(FAILED, disabled=True)
    assert action == DeadLetter(task(last_failure="http_500"), "endpoint_disabled", exhausted=False)


def test_a_failure_with_retries_left_is_retried_per_the_policy():
    action = after(FAILED, attempt=2, deferrals=4)
    assert isinstance(action, RetryAt)
    assert action.when == NOW + timedelta(seconds=40) and action.tier_ms == 30_000
    assert (action.task.attempt, action.task.deferrals, action.task.last_failure) == (3, 0, "http_500")


def test_the_last_failure_is_dead_lettered_as_exhausted_with_its_reason():
    action = after(FAILED, attempt=3)
    assert action == DeadLetter(task(attempt=3, last_failure="http_500"), "http_500", exhausted=True)


@pytest.mark.parametrize(
    ("result", "seconds"),
    [
        (AttemptResult("failure", "http_503", status=503, retry_after_seconds=20.0), 20.0),
        (AttemptResult("failure", "http_503", status=503, retry_after_seconds=3_600.0), 60.0),
        (AttemptResult("failure", "http_503", status=503, retry_after_seconds=0.5), 2.0),
        (AttemptResult("failure", "timeout"), 5.0),
        (AttemptResult("failure", "http_429", status=429), 5.0),
    ],
    ids=["retry-after", "retry-after-capped", "retry-after-shorter", "timeout-penalty", "429-penalty"],
)
def test_retry_after_and_penalties_lengthen_the_wait(result, seconds):
    action = after(result)
    assert isinstance(action, RetryAt) and action.when == NOW + timedelta(seconds=seconds)


def test_jitter_spreads_the_delay_by_the_rules_share_and_only_if_the_policy_allows():
    jittery = RetryPolicy(schedule_seconds=[100])
    draws = []
    for seed in range(20):
        action = decide(task(), Attempted(FAILED, jittery), RULES, NOW, random.Random(seed))
        assert isinstance(action, RetryAt)
        draws.append((action.when - NOW).total_seconds())
    assert all(80 <= d <= 120 for d in draws) and len(set(draws)) > 1
    again = decide(task(), Attempted(FAILED, jittery), RULES, NOW, random.Random(0))
    assert isinstance(again, RetryAt) and (again.when - NOW).total_seconds() == draws[0], "the rng is the only chance"
    steady = decide(task(), Attempted(FAILED, RetryPolicy(schedule_seconds=[100], jitter=False)), RULES, NOW)
    assert isinstance(steady, RetryAt) and steady.when == NOW + timedelta(seconds=100)
