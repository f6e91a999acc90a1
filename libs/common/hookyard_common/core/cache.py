"""A per-replica cache that keeps the database off hot paths.

A hit never waits: an expired entry is still served while one background
read refreshes it, and concurrent misses for the same key share one read
(no stampede when a hot entry expires). Absent values (None) are cached too,
apart from the present ones, bounded and for their own (short) time, never
served stale: a flood of unknown keys neither reaches the database per
repeat nor evicts the hot entries, and a key created since is found soon.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


#: After a failed read, how long a cache that keeps what it knew serves it without trying to wait again.
FAILURE_HOLD_SECONDS = 5.0


class RefreshingCache(Generic[K, V]):
    """`stale_seconds`: how long past its expiry an entry may still be served while it is
    refreshed; None for as long as it takes. Past that, a get waits for the fresh value.

    `keep_on_failure`: when that read fails (the database is away), the value known before
    is served instead of the error, and for FAILURE_HOLD_SECONDS no get waits on a read
    again (one is tried behind): a bounded staleness while the database answers, and the
    service keeps working while it does not."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl_seconds: float,
        max_entries: int = 50_000,
        stale_seconds: float | None = None,
        absent_seconds: float | None = None,
        max_absent: int = 10_000,
        keep_on_failure: bool = False,
    ):
        self._load = load
        self.ttl = ttl_seconds
        self.stale_seconds = stale_seconds
        self.max_entries = max_entries
        self.absent_seconds = ttl_seconds if absent_seconds is None else absent_seconds
        self.max_absent = max_absent
        self._entries: dict[K, tuple[float, V]] = {}
        self._absent: dict[K, float] = {}  # key -> expiry; insertion order is age order
        self._reads: dict[K, asyncio.Task] = {}
        self.keep_on_failure = keep_on_failure
        self._failing_until = 0.0  # monotonic time until which reads are not waited for

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is None:
            if self._absent.get(key, 0.0) > time.monotonic():
                return None  # type: ignore[return-value]  # known absent
            return await self._read(key)
        expires, value = entry
        now = time.monotonic()
        if expires <= now:
            refresh = self._read(key)
            if self.stale_seconds is not None and expires + self.stale_seconds <= now:
                if not self.keep_on_failure:
                    return await refresh  # too old to serve
                if self._failing_until > now:
                    return value  # the database failed a moment ago: what was known holds
                try:
                    return await refresh
                except Exception:
                    self._failing_until = time.monotonic() + FAILURE_HOLD_SECONDS
                    return value
        return value

    def holds(self, key: K) -> bool:
        """Whether a get of `key` is answered from memory (present, or known absent)."""
        return key in self._entries or self._absent.get(key, 0.0) > time.monotonic()

    def _read(self, key: K) -> asyncio.Task:
        task = self._reads.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key))
            self._reads[key] = task
            task.add_done_callback(lambda done: self._reads.pop(key) if self._reads.get(key) is done else None)
            # A read nobody waits for (served stale behind it) may fail: its error is seen, not left unretrieved.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return task

    async def _fill(self, key: K) -> V:
        value = await self._load(key)
        if self._reads.get(key) is asyncio.current_task():  # not invalidated meanwhile
            if value is None:
                self._remember_absent(key)
                return value
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, value)
        return value

    def _remember_absent(self, key: K) -> None:
        self._entries.pop(key, None)
        self._absent.pop(key, None)
        while len(self._absent) >= self.max_absent:
            del self._absent[next(iter(self._absent))]  # the oldest goes first
        self._absent[key] = time.monotonic() + self.absent_seconds

    def invalidate(self, key: K) -> None:
        """Forget the key; a read already under way started too early to count."""
        self._entries.pop(key, None)
        self._absent.pop(key, None)
        self._reads.pop(key, None)
