"""Running one delivery task: the step the dispatcher and the retrier share.

attempt → the endpoint's health hears of it (health.py) → the decision
(decision.py: delivered, retry at T on a tier, defer, dead-letter, disable)
→ carried out here → attempt recorded. This module finds out what happened
and does the I/O; what follows from it is `decide`'s alone. Tenants hear of
outcomes through operational events (operational_events.py:
`endpoint.failing`, `endpoint.disabled`, `message.attempt.exhausted`,
`message.attempt.recovered`). A paused endpoint's deliveries wait on the
broker until the pause is over, without counting as attempts.

A busy endpoint (still at its `max_in_flight` after a short
wait, or over its `rate_limit_per_second`, or its tenant's deliveries in
flight at `tenant_max_in_flight`) is not waited for any longer: the
task is deferred on the retry tiers, so a slow endpoint never holds up
anyone else's deliveries; each deferral in a row waits twice as long (up to
`deferral_max_seconds`), and the count starts again once it is attempted.
Every step that hands a task on waits for the broker's confirm.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp
from prometheus_client import Counter, Gauge, Histogram

from hookyard_common.broker import outages, tiers, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core import logs, metric_labels
from hookyard_common.core.settings import Settings
from hookyard_common.delivery import attempt_log, dead_letters
from hookyard_common.delivery.attempt import AttemptResult, Deliverer
from hookyard_common.delivery.attempt_log import AttemptLog
from hookyard_common.delivery.decision import (
    TENANT_DISABLED_REASON,
    Action,
    Attempted,
    Busy,
    DeadLetter,
    Delivered,
    Disable,
    Inactive,
    Paused,
    RetryRules,
    decide,
    put_off,
)
from hookyard_common.delivery.endpoint_cache import EndpointCache
from hookyard_common.delivery.endpoints import Endpoint
from hookyard_common.delivery.health import HealthKeeper
from hookyard_common.delivery.routing import destination
from hookyard_common.delivery.ssrf import DestinationPolicy, GuardedConnector
from hookyard_common.operational_events import (
    MESSAGE_ATTEMPT_EXHAUSTED,
    MESSAGE_ATTEMPT_RECOVERED,
    is_operational,
    operational_event,
)
from hookyard_common.schemas import DeliveryTask, utcnow
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "hookyard_deliveries_total",
    "Delivery attempts by outcome (success, failure, gone) and reason (http_500, timeout, ...).",
    ["outcome", "reason"],
)
ATTEMPT_SECONDS = Histogram(
    "hookyard_delivery_attempt_seconds",
    "Duration of delivery attempts, request to response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# One figure for all endpoints: a series per endpoint would grow with the tenants (metric_labels.py).
IN_FLIGHT = Gauge(
    "hookyard_deliveries_in_flight", "Delivery attempts in flight, all endpoints together.", multiprocess_mode="livesum"
)
HANDED_ON = Counter(
    "hookyard_tasks_handed_on_total",
    "Tasks passed to the broker instead of delivered now: retry, deferred (endpoint busy), paused, hop,"
    " held (a dependency failed), watch (a copy covering a delivery going on behind), dead; `tier` is"
    " the retry tier's delay in ms (empty for dead).",
    ["kind", "tier"],
)
# The longest timeout an endpoint may have (endpoints.py): a watch copy's wait when its
# endpoint can no longer be read.
MAX_TIMEOUT_SECONDS = 120.0
DEAD_LETTERS = Counter("hookyard_dead_letters_total", "Messages dead-lettered, by reason.", ["reason"])
#: Tasks of an endpoint that no longer exists (deleted, or its tenant deleted): acknowledged, never sent.
DROPPED = Counter("hookyard_tasks_dropped_total", "Delivery tasks dropped, by reason.", ["reason"])


def log_attempt(task: DeliveryTask, endpoint: Endpoint, result: AttemptResult) -> None:
    """One line per attempt, as seed 001's operators read them: INFO when delivered, WARNING when not."""
    level = logging.INFO if result.outcome == "success" else logging.WARNING
    if not log.isEnabledFor(level):  # the line is built per attempt: skip it when nobody reads it
        return
    verdict = "delivered" if result.outcome == "success" else "failed"
    status = result.status if result.status is not None else result.reason
    log.log(
        level,
        f"webhook {verdict} - event {task.event.id}, tenant {endpoint.tenant_id}, attempt {task.attempt}, "
        f"status {status}, time {result.latency_ms:.0f}ms",
        extra={
            "event_id": task.event.id,
            "message_id": task.message_id,
            "tenant_id": endpoint.tenant_id,
            "endpoint_id": endpoint.id,
            "attempt": task.attempt,
            "status": result.status,
            "reason": result.reason,
            "latency_ms": result.latency_ms,
        },
    )


@functools.lru_cache(maxsize=4096)
def _child(metric, *labels: str):
    """A labelled metric, looked up once per label set rather than per delivery."""
    return metric.labels(*labels)


class TokenBucket:
    """`rate` tokens a second, bursts up to one second's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = max(1.0, rate)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        broker: Broker,
        deliverer: Deliverer,
        endpoints: EndpointCache,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings = settings
        self.store = store
        self.broker = broker
        self.deliverer = deliverer
        self.endpoints = endpoints
        self.attempts = AttemptLog(store)
        self.clock = clock
        self.rules = RetryRules.from_settings(settings)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._tenant_in_flight: dict[str, int] = defaultdict(int)
        self._freed = asyncio.Condition()
        self._waiting = 0
        self._buckets: dict[str, TokenBucket] = {}
        self.health = HealthKeeper(settings, store, endpoints, self._publish_operational)
        self._behind: set[asyncio.Future] = set()

    async def run_message(self, tasks: Sequence[DeliveryTask]) -> list[str]:
        """Run the tasks of one broker message (an event's fan-out, or one retry). If some are
        still going on after `delivery_hold_seconds` (an endpoint slow to answer), each gets a
        watch copy on the retry tiers and they go on behind: the message can then be acked, so
        a delivery's wait never holds a place in the consumer's prefetch window."""
        now = self.clock()
        since = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the database keeps milliseconds
        run = self.run if len(tasks) == 1 else self.run_apart
        running = [asyncio.ensure_future(run(task)) for task in tasks]
        _, pending = await asyncio.wait(running, timeout=self.settings.delivery_hold_seconds)
        if pending:
            going_on = [task for task, future in zip(tasks, running, strict=True) if not future.done()]
            await asyncio.gather(*(self._watch(task, since) for task in going_on))
            for future in pending:
                self._behind.add(future)
                future.add_done_callback(self._settled_behind)
        return [future.result() if future.done() else "behind" for future in running]

    async def run_apart(self, task: DeliveryTask) -> str:
        """One of several deliveries of an event: if a dependency fails during it, only this task
        waits on the tiers; the event is not held whole, so its delivered siblings are not redone."""
        try:
            return await self.run(task)
        except Exception as exc:
            if not outages.is_dependency_failure(exc):
                raise
            await self.hold(task)
            return "held"

    async def _watch(self, task: DeliveryTask, since: datetime) -> None:
        """A durable copy of a delivery going on behind, due once it must be over: should this
        replica die first, the copy finds no attempt recorded since and makes it again."""
        endpoint = await self.endpoints.find(task.event.tenant_id, task.endpoint_id)
        timeout = endpoint.timeout_seconds if endpoint is not None else MAX_TIMEOUT_SECONDS
        wait = self.settings.endpoint_slot_wait_seconds + timeout + self.settings.watch_grace_seconds
        copy = task.model_copy(update={"watch_since": since, "due_at": since + timedelta(seconds=wait)})
        await self._publish_to_tier(copy, self.rules.tier(wait), "watch")

    def _settled_behind(self, future: asyncio.Future) -> None:
        self._behind.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # Its watch copy finds no attempt recorded and makes it again.
            log.warning("a delivery going on behind failed", exc_info=future.exception())

    async def outlived(self, task: DeliveryTask) -> bool:
        """A watch copy whose delivery was made (and recorded) since: nothing left to do."""
        return task.watch_since is not None and await attempt_log.made_since(self.store, task, task.watch_since)

    async def hand_back(self) -> None:
        """At shutdown, let deliveries going on behind finish briefly; their watch copies cover the rest."""
        if self._behind:
            _, unfinished = await asyncio.wait(set(self._behind), timeout=self.settings.shutdown_deadline_seconds)
            for future in unfinished:
                future.cancel()

    async def run(self, task: DeliveryTask) -> str:
        """Deliver or hand on one task; returns what happened (for logs and tests)."""
        # Each task runs in a task of its own (run_message): these ids are this delivery's alone.
        logs.bind(tenant_id=task.event.tenant_id, event_id=task.event.id, endpoint_id=task.endpoint_id)
        endpoint = await self.endpoints.find(task.event.tenant_id, task.endpoint_id)
        if endpoint is not None:
            endpoint = destination(task.event, endpoint)
        if endpoint is None:
            log.info(
                "endpoint deleted; task dropped", extra={"endpoint_id": task.endpoint_id, "message_id": task.message_id}
            )
            _child(DROPPED, "endpoint_deleted").inc()
            return "dropped"
        now = self.clock()
        happened = await self._obstacle(endpoint, now)
        if happened is not None:
            return await self._carry_out(task, endpoint, decide(task, happened, self.rules, now))
        tenant_in_flight = metric_labels.per_tenant(metric_labels.TENANT_IN_FLIGHT, endpoint.tenant_id)
        IN_FLIGHT.inc()
        if tenant_in_flight is not None:
            tenant_in_flight.inc()
        try:
            result = await self.deliverer.attempt(endpoint, task, now)
        finally:
            self._in_flight[endpoint.id] -= 1
            self._tenant_in_flight[endpoint.tenant_id] -= 1
            IN_FLIGHT.dec()
            if tenant_in_flight is not None:
                tenant_in_flight.dec()
            if self._waiting:  # only deliveries waiting for a slot need waking
                async with self._freed:
                    self._freed.notify_all()
        if result.outcome == "gone" and task.event.target_url is not None:
            # A 410 from a one-off URL says nothing of the endpoint: retried, not disabled.
            result = dataclasses.replace(result, outcome="failure")
        log_attempt(task, endpoint, result)
        _child(DELIVERIES, result.outcome, result.reason).inc()
        metric_labels.count_for_tenant(metric_labels.TENANT_DELIVERIES, endpoint.tenant_id, result.outcome)
        ATTEMPT_SECONDS.observe(result.latency_ms / 1000)
        outcome = await self._after(task, endpoint, result)
        # Recorded once what follows the attempt is durable: a watch copy that finds this
        # record is dropped, and must not be unless the retry or dead letter exists.
        await self.attempts.record(task, endpoint.url, result, now)
        return outcome

    async def _obstacle(self, endpoint: Endpoint, now: datetime) -> Inactive | Paused | Busy | None:
        """What stands in the way of attempting now, or None once a slot is taken for the attempt."""
        if endpoint.tenant_disabled:
            return Inactive(TENANT_DISABLED_REASON)
        if not endpoint.active:
            return Inactive()
        paused_until = await self.health.hold(endpoint, now)
        if paused_until is not None:
            return Paused(paused_until)
        if not await self._slot(endpoint):
            return Busy()
        return None

    async def _slot(self, endpoint: Endpoint) -> bool:
        """Take one of the endpoint's in-flight slots, waiting briefly for one to free up
        (a fast endpoint frees them in milliseconds); False when the endpoint stays busy."""
        if self._tenant_full(endpoint):
            return False
        if endpoint.rate_limit_per_second:
            bucket = self._buckets.get(endpoint.id)
            if bucket is None or bucket.rate != endpoint.rate_limit_per_second:
                bucket = self._buckets[endpoint.id] = TokenBucket(endpoint.rate_limit_per_second)
            if not bucket.take():
                return False

        def free() -> bool:
            return self._in_flight[endpoint.id] < endpoint.max_in_flight

        if not free():
            self._waiting += 1
            try:
                async with self._freed:
                    await asyncio.wait_for(self._freed.wait_for(free), self.settings.endpoint_slot_wait_seconds)
            except TimeoutError:
                return False
            finally:
                self._waiting -= 1
        if self._tenant_full(endpoint):  # again: others may have taken the tenant's last places meanwhile
            return False
        self._in_flight[endpoint.id] += 1
        self._tenant_in_flight[endpoint.tenant_id] += 1
        return True

    def _tenant_full(self, endpoint: Endpoint) -> bool:
        """The tenant's deliveries hold their share of the connection pool already."""
        return self._tenant_in_flight[endpoint.tenant_id] >= self.settings.tenant_max_in_flight

    async def _after(self, task: DeliveryTask, endpoint: Endpoint, result: AttemptResult) -> str:
        """Tell the endpoint's health of the attempt (its verdict is part of the decision), then decide."""
        now = self.clock()
        disabled = False
        if result.outcome == "success":
            await self.health.succeeded(endpoint, now)
        elif result.outcome == "failure":
            disabled = await self.health.failed(endpoint, now)
        action = decide(task, Attempted(result, endpoint.retry_policy, disabled), self.rules, now)
        return await self._carry_out(task, endpoint, action)

    async def _carry_out(self, task: DeliveryTask, endpoint: Endpoint, action: Action) -> str:
        """The I/O of a decision (decision.py); returns its name for logs and tests."""
        if isinstance(action, Delivered):
            if action.replayed:
                await dead_letters.resolved(self.store, task.message_id)
            if action.recovered:
                await self.announce(task, MESSAGE_ATTEMPT_RECOVERED, {"attempt": task.attempt})
            return "delivered"
        if isinstance(action, Disable):
            await self.health.disable(endpoint, action.reason, self.clock())
            return "disabled"
        if isinstance(action, DeadLetter):
            await self.dead_letter(action.task, action.reason)
            if action.exhausted:
                details = {"attempt": task.attempt, "reason": action.reason}
                await self.announce(task, MESSAGE_ATTEMPT_EXHAUSTED, details)
            return "dead"
        await self._publish_to_tier(action.task, action.tier_ms, action.kind)
        return action.kind

    async def hold(self, task: DeliveryTask) -> None:
        """A dependency failed during this task (outages.py): it waits on the tiers like a
        deferral, not an attempt, so its event's other deliveries need not be redone."""
        action = put_off(task, "held", self.rules, self.clock())
        await self._publish_to_tier(action.task, action.tier_ms, action.kind)

    async def hop(self, task: DeliveryTask, remaining_seconds: float) -> None:
        """A task came back before it is due (a long delay spans tiers): wait in the next tier."""
        await self._publish_to_tier(task, self.rules.tier(remaining_seconds), "hop")

    async def _publish_to_tier(self, task: DeliveryTask, tier: int, kind: str) -> None:
        await self.broker.publish(
            task.to_bytes(),
            exchange="",
            routing_key=topology.tier_queue(tier),
            message_id=task.message_id,
            headers=tiers.entering(time.time()),
        )
        HANDED_ON.labels(kind, str(tier)).inc()

    async def dead_letter(self, task: DeliveryTask, reason: str) -> None:
        await dead_letters.record(self.store, task, reason, self.clock())
        await self.broker.publish(
            task.to_bytes(),
            exchange="",
            routing_key=topology.DEAD_LETTER_QUEUE,
            message_id=task.message_id,
            headers={"x-hookyard-reason": reason},
        )
        HANDED_ON.labels("dead", "").inc()
        DEAD_LETTERS.labels(reason).inc()

    async def announce(self, task: DeliveryTask, event_type: str, details: dict) -> None:
        """An operational event about a message. None about operational events themselves,
        or two failing endpoints would trade announcements of each other's failures forever."""
        if is_operational(task.event):
            return
        payload = {
            "message_id": task.message_id,
            "event_id": task.event.id,
            "event_type": task.event.event_type,
            "endpoint_id": task.endpoint_id,
            **details,
        }
        await self._publish_operational(task.event.tenant_id, event_type, payload)

    async def _publish_operational(self, tenant_id: str, event_type: str, payload: dict) -> None:
        event = operational_event(tenant_id, event_type, payload)
        await self.broker.publish(
            event.to_bytes(), routing_key=topology.routing_key(tenant_id, event_type), message_id=event.id
        )


async def build_worker(ctx) -> DeliveryWorker:
    """The worker of a dispatcher or retrier process: one pooled, SSRF-guarded HTTP session,
    and an endpoint cache that follows the ingest's announcements of changes."""
    settings = ctx.settings
    connector = GuardedConnector(
        DestinationPolicy(settings.delivery_allowed_cidrs),
        limit=settings.delivery_max_connections,
        ttl_dns_cache=60,
    )
    session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
    endpoints = EndpointCache(ctx.store, settings.endpoint_cache_seconds)
    await endpoints.follow_changes(ctx.broker)
    worker = DeliveryWorker(
        settings, ctx.store, ctx.broker, Deliverer(session, settings.delivery_response_max_bytes), endpoints
    )
    ctx.on_close(worker.hand_back)
    ctx.on_close(worker.attempts.flush)
    ctx.on_close(session.close)
    return worker
