"""Rate limits that hold across every ingest process: tokens leased in small batches from MongoDB.

Each limited key (a client of a source, a source, a monitor, a client IP) has one
counter document per window in `rate_counters`, `{_id: "<key>@<window>", taken,
expires_at}`, TTL-indexed (see `hookyard_common.records.rate_counters`). A process short of
tokens for a key takes a lease: one atomic `$inc` of `taken` by a batch, of
which it keeps what fits under the limit; requests then spend the lease with
no database call. A batch is a quarter of the room the process last saw, at
most a twentieth of the limit, so leases shrink as the window fills and the
tokens stranded in other processes' leases when the limit is reached are few:
the combined 429 point is the limit, less those few, never more.

The window slides like `SlidingWindowLimiter`'s: the previous window's total,
weighted by how much of it still overlaps, is read once per key and window.
Windows are numbered from the wall clock, which the processes share.

Over the limit, a key is refused in memory until the window has room again,
so a flood costs no database call. When MongoDB fails, or takes longer than
HOOKYARD_RATE_LIMIT_STORE_TIMEOUT_SECONDS, the process counts alone for
HOOKYARD_RATE_LIMIT_FALLBACK_SECONDS (its local limiter counts alongside at
all times, so it is warm), then asks again: the edge keeps answering, with
per-process limits meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pymongo
from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from hookyard_ingest.edge.limits import SlidingWindowLimiter, retry_after, too_many

log = logging.getLogger(__name__)

#: The largest lease, as a fraction of the limit: what one process can strand at worst.
MAX_LEASE_FRACTION = 1 / 20

LEASES = Counter(
    "hookyard_rate_limit_leases_total",
    "Token leases asked of MongoDB, by outcome: leased, full (the window has no room), unreachable (counting alone).",
    ["outcome"],
)


@dataclass
class _Lease:
    """This process's view of one key's shared counter in one window."""

    window: int
    tokens: int = 0  # leased, not yet spent
    taken: int = 0  # the shared count as last seen
    previous: int | None = None  # the previous window's total, once read
    refused_until: float = 0.0


class LeasedLimiter:
    """`hit` as `SlidingWindowLimiter.hit`, but the limit holds across processes (see module doc).
    Without `counters` (HOOKYARD_RATE_LIMIT_SHARED=false) it is the local limiter alone."""

    def __init__(
        self,
        local: SlidingWindowLimiter,
        counters: AsyncCollection | None,
        *,
        timeout_seconds: float = 0.25,
        fallback_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ):
        self.local = local
        self.window = local.window
        self.counters = counters
        self.timeout = timeout_seconds
        self.fallback = fallback_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._leases: dict[str, _Lease] = {}
        self._taking: dict[str, asyncio.Task] = {}
        self._alone_until = 0.0

    async def hit(self, key: str, limit: int) -> float | None:
        """Count one request; None when allowed, else seconds to wait before retrying."""
        local_wait = self.local.hit(key, limit)  # always counted: the fallback stays warm
        counters = self.counters
        filled: _Lease | None = None
        while counters is not None and self.clock() >= self._alone_until:
            now = self.clock()
            lease = self._lease(key, now)
            if not lease.tokens and filled is not None and filled.tokens:
                # Leased as the window turned: spend it where it was counted, rather than
                # count this request twice (which would weigh on the next window as well).
                lease = filled
            if lease.tokens > 0:
                lease.tokens -= 1
                return None
            if lease.refused_until > now:
                return lease.refused_until - now
            filled = await self._take(counters, key, limit)
        return local_wait

    def _lease(self, key: str, now: float) -> _Lease:
        window = int(now // self.window)
        lease = self._leases.get(key)
        if lease is None or lease.window != window:
            lease = _Lease(window)
            if len(self._leases) >= self.max_keys:
                self._leases = {k: v for k, v in self._leases.items() if v.window >= window - 1}
            self._leases[key] = lease
        return lease

    async def _take(self, counters: AsyncCollection, key: str, limit: int) -> _Lease:
        """One lease at a time per key: concurrent requests wait for the same one, the lease it filled."""
        task = self._taking.get(key)
        if task is None:
            task = asyncio.create_task(self._lease_more(counters, key, limit))
            self._taking[key] = task
            task.add_done_callback(lambda _: self._taking.pop(key, None))
        return await asyncio.shield(task)  # a caller giving up does not cancel the others' lease

    async def _lease_more(self, counters: AsyncCollection, key: str, limit: int) -> _Lease:
        now = self.clock()
        lease = self._lease(key, now)
        offset = now - lease.window * self.window
        try:
            with pymongo.timeout(self.timeout):
                if lease.previous is None:
                    prior = await counters.find_one({"_id": f"{key}@{lease.window - 1}"}, {"taken": 1})
                    lease.previous = prior["taken"] if prior else 0
                room = math.floor(limit - lease.previous * (1 - offset / self.window))
                batch = max(1, min(math.ceil(limit * MAX_LEASE_FRACTION), (room - lease.taken) // 4))
                taken = await self._increment(counters, f"{key}@{lease.window}", batch, lease.window)
        except Exception as exc:  # whatever goes wrong here, the edge answers: never a 5xx for a counter
            log.warning("rate counters unreachable; counting in this process alone", extra={"error": repr(exc)})
            self._alone_until = self.clock() + self.fallback
            LEASES.labels("unreachable").inc()
            return lease
        before = taken - batch
        lease.taken = taken
        granted = max(0, min(batch, room - before))
        lease.tokens += granted
        LEASES.labels("leased" if granted else "full").inc()
        if not granted:
            lease.refused_until = now + max(0.05, retry_after(self.window, limit, lease.previous, before, offset))
        return lease

    async def _increment(self, counters: AsyncCollection, counter_id: str, batch: int, window: int) -> int:
        """The counter's `taken` after adding `batch`; created on first use."""
        for _ in range(3):
            try:
                doc = await counters.find_one_and_update(
                    {"_id": counter_id},
                    {"$inc": {"taken": batch}, "$setOnInsert": {"expires_at": self._expiry(window)}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # another process created it at the same moment: it exists now
            if doc is not None:
                return doc["taken"]
        raise PyMongoError(f"counter {counter_id} could not be incremented")

    def _expiry(self, window: int) -> datetime:
        # Kept while it is the current or the previous window, then swept by the TTL index.
        return datetime.fromtimestamp((window + 2) * self.window + 60, tz=UTC)


async def enforce(limiter: LeasedLimiter, key: str, limit: int, what: str) -> None:
    """Count one request against `key`; over `limit`, a 429 naming the limit, with Retry-After."""
    wait = await limiter.hit(key, limit)
    if wait is not None:
        message = f"too many requests ({what} limit {limit} per {limiter.window:g}s)"
        raise too_many("rate_limited", message, wait, limit=limit, scope=what)


async def enforce_edge(
    limiter: LeasedLimiter, target: str, scope: str, client: str, *, ceiling: int, per_client: int, per_target: int
) -> None:
    """The public edge's three limits for one request to `target` (`in:<source>`,
    `ping:<monitor>`): the client's ceiling over the whole edge, its own allowance at
    `target` (so a provider IP shared by many tenants gets each target's allowance), and
    `target`'s total."""
    await enforce(limiter, f"ip:{client}", ceiling, "ip total")
    await enforce(limiter, f"{target}:{client}", per_client, "ip")
    await enforce(limiter, target, per_target, scope)
