"""Endpoint health: circuit breaking, failure warnings and disabling.

An endpoint that is mostly failing is **paused**: once at least
`circuit_minimum_requests` attempts in the last `circuit_window_seconds`
(as one replica sees them, failure_window.py) failed at a rate of
`circuit_failure_rate` or more, its deliveries wait on the broker instead
of hammering it. A flaky endpoint that fails half its requests stays below
the rate and keeps being served; a quiet one is not paused by a handful of
failures. When the pause is over, one delivery is let through as a
**probe** (claimed with a conditional update, so one replica probes, not
all): success closes the circuit and starts a fresh window, failure pauses
again for twice as long (up to a cap).

The endpoint's unbroken run of failures is timed from `failing_since`: as it
crosses 50 %, 75 % and 90 % of `endpoint_disable_after_seconds` the tenant
gets an `endpoint.failing` warning, and past 100 % (or at once on a 410) the
endpoint is disabled with an `endpoint.disabled` event. The next success
clears it all.

The state lives on the endpoint document (`health`), read through the
endpoint cache, and is written only when it changes; every change is a
conditional update, so however many replicas see the same failure, each
warning, pause and disabling happens once. A healthy endpoint costs no write:
its window is counted in memory.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from prometheus_client import Counter

from hookyard_common.core.settings import Settings
from hookyard_common.delivery.endpoint_cache import COLLECTION, EndpointCache
from hookyard_common.delivery.endpoints import Endpoint, EndpointHealth
from hookyard_common.delivery.failure_window import FailureWindow
from hookyard_common.operational_events import ENDPOINT_DISABLED, ENDPOINT_FAILING
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

HEALTH_CHANGES = Counter(
    "hookyard_endpoint_health_changes_total",
    "Changes of endpoints' health: paused, probed, resumed, warned (endpoint.failing), disabled.",
    ["change"],
)

WARNING_LEVELS = (0.5, 0.75, 0.9)
# A probe's claim on an endpoint lasts its timeout plus this, then anyone may probe again.
PROBE_SLACK_SECONDS = 30.0
# How often deliveries waiting for a probe's verdict look again.
PROBE_RECHECK_SECONDS = 2.0

Announce = Callable[[str, str, dict], Awaitable[None]]


class HealthKeeper:
    def __init__(self, settings: Settings, store: Store, endpoints: EndpointCache, announce: Announce):
        self.settings = settings
        self.collection = store[COLLECTION]
        self.endpoints = endpoints
        self.announce = announce
        self._windows: dict[str, FailureWindow] = defaultdict(lambda: FailureWindow(settings.circuit_window_seconds))
        # What this replica already wrote, so a stale cache does not make it write again.
        self._failing_since: dict[str, datetime] = {}
        self._warned: dict[str, float] = {}
        # Endpoints this replica is probing, with the end of the pause the probe follows.
        self._probing: dict[str, datetime] = {}
        self._pruned_at = 0.0

    async def hold(self, endpoint: Endpoint, now: datetime) -> datetime | None:
        """When a delivery to this endpoint must wait until (it is paused), or None to go ahead.

        Going ahead once a pause is over means this delivery is the probe;
        the others check back every few seconds for its verdict.
        """
        health = endpoint.health
        if health.paused_until is None:
            return None
        if health.paused_until > now:
            return health.paused_until
        recheck = now + timedelta(seconds=PROBE_RECHECK_SECONDS)
        if health.probe_until is not None and health.probe_until > now:
            return min(health.probe_until, recheck)
        probe_until = now + timedelta(seconds=endpoint.timeout_seconds + PROBE_SLACK_SECONDS)
        claimed = await self.collection.update_one(
            {"_id": endpoint.id, "health.paused_until": health.paused_until, "health.probe_until": health.probe_until},
            {"$set": {"health.probe_until": probe_until}},
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        if not claimed.modified_count:  # another delivery probes
            return recheck
        self._probing[endpoint.id] = health.paused_until
        HEALTH_CHANGES.labels("probed").inc()
        log.info("probing paused endpoint", extra={"endpoint_id": endpoint.id})
        return None

    def _window(self, endpoint_id: str, now: datetime) -> FailureWindow:
        """The endpoint's window; once a window's length, those of endpoints gone quiet are dropped
        (memory follows the endpoints with recent traffic, not every endpoint ever served)."""
        at = now.timestamp()
        if at - self._pruned_at >= self.settings.circuit_window_seconds:
            self._pruned_at = at
            for quiet in [key for key, window in self._windows.items() if window.is_empty(at)]:
                del self._windows[quiet]
        return self._windows[endpoint_id]

    async def succeeded(self, endpoint: Endpoint, now: datetime) -> None:
        probing = self._probing.pop(endpoint.id, None) is not None
        window = self._window(endpoint.id, now)
        if probing:
            window.clear()  # closed again: judged afresh, not on the failures that opened it
        window.record(now.timestamp(), failed=False)
        known_failing = endpoint.id in self._failing_since
        health = endpoint.health
        if not (probing or known_failing or health.failing_since or health.paused_until or health.warned):
            return  # healthy, as far as anyone knows: nothing to write
        self._failing_since.pop(endpoint.id, None)
        self._warned.pop(endpoint.id, None)
        cleared = await self.collection.update_one(
            {"_id": endpoint.id}, {"$set": {"health": EndpointHealth().model_dump()}}
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        if cleared.modified_count and (probing or endpoint.health.paused_until is not None):
            HEALTH_CHANGES.labels("resumed").inc()
            log.info("endpoint resumed", extra={"endpoint_id": endpoint.id})

    async def failed(self, endpoint: Endpoint, now: datetime) -> bool:
        """Account for a failed attempt; True when the endpoint has just been disabled."""
        window = self._window(endpoint.id, now)
        window.record(now.timestamp(), failed=True)
        since = await self._failing_since_for(endpoint, now)
        share = (now - since).total_seconds() / self.settings.endpoint_disable_after_seconds
        if share >= 1:
            reason = f"failing continuously since {since.isoformat()}"
            # Only if that run of failures is still the recorded one (no success came between).
            return await self.disable(endpoint, reason, now, {"health.failing_since": since})
        await self._warn(endpoint, since, share)
        probed_pause = self._probing.pop(endpoint.id, None)
        if probed_pause is not None:
            await self._pause(endpoint, now, endpoint.health.pause_seconds * 2, probed_pause)
        elif endpoint.health.paused_until is None and window.trips(
            now.timestamp(), self.settings.circuit_failure_rate, self.settings.circuit_minimum_requests
        ):
            await self._pause(endpoint, now, self.settings.circuit_pause_seconds, None)
        return False

    async def disable(self, endpoint: Endpoint, reason: str, now: datetime, condition: dict | None = None) -> bool:
        """Disable the endpoint and tell the tenant, once; True if this call did it."""
        changed = await self.collection.update_one(
            {"_id": endpoint.id, "active": {"$ne": False}, **(condition or {})},
            {"$set": {"active": False, "disabled_reason": reason, "updated_at": now}},
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        if changed.modified_count:  # once, however many replicas saw it
            HEALTH_CHANGES.labels("disabled").inc()
            log.warning("endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason})
            await self.announce(
                endpoint.tenant_id,
                ENDPOINT_DISABLED,
                {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason},
            )
        return bool(changed.modified_count)

    async def _failing_since_for(self, endpoint: Endpoint, now: datetime) -> datetime:
        since = endpoint.health.failing_since or self._failing_since.get(endpoint.id)
        if since is not None:
            return since
        # The first failure of a run: recorded once; a replica that lost the race reads the winner's.
        self._failing_since[endpoint.id] = now
        await self.collection.update_one(
            {"_id": endpoint.id, "health.failing_since": None}, {"$set": {"health.failing_since": now}}
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        return now

    async def _warn(self, endpoint: Endpoint, since: datetime, share: float) -> None:
        level = max((lvl for lvl in WARNING_LEVELS if lvl <= share), default=None)
        if level is None or level <= max(endpoint.health.warned, self._warned.get(endpoint.id, 0.0)):
            return
        self._warned[endpoint.id] = level
        changed = await self.collection.update_one(
            {"_id": endpoint.id, "health.failing_since": since, "health.warned": {"$lt": level}},
            {"$set": {"health.warned": level}},
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        if changed.modified_count:
            HEALTH_CHANGES.labels("warned").inc()
            disable_at = since + timedelta(seconds=self.settings.endpoint_disable_after_seconds)
            await self.announce(
                endpoint.tenant_id,
                ENDPOINT_FAILING,
                {
                    "endpoint_id": endpoint.id,
                    "url": endpoint.url,
                    "failing_since": since.isoformat(),
                    "disable_at": disable_at.isoformat(),
                    "share_of_threshold": level,
                },
            )

    async def _pause(self, endpoint: Endpoint, now: datetime, seconds: float, expected: datetime | None) -> None:
        """Pause the endpoint, if its last pause is still `expected` (None: it was running)."""
        seconds = min(max(seconds, self.settings.circuit_pause_seconds), self.settings.circuit_max_pause_seconds)
        until = now + timedelta(seconds=seconds)
        changed = await self.collection.update_one(
            {"_id": endpoint.id, "health.paused_until": expected},
            {"$set": {"health.paused_until": until, "health.pause_seconds": seconds, "health.probe_until": None}},
        )
        self.endpoints.invalidate(endpoint.tenant_id)
        self._windows.pop(endpoint.id, None)  # judged afresh once it runs again
        if changed.modified_count:
            HEALTH_CHANGES.labels("paused").inc()
            log.warning("endpoint paused", extra={"endpoint_id": endpoint.id, "seconds": seconds})
