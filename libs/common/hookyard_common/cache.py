"""A per-replica cache that keeps the database off hot paths.

A hit never waits: an expired entry is still served while one background
read refreshes it, and concurrent misses for the same key share one read
(no stampede when a hot entry expires). Absent values are cached too, so a
flood of unknown keys does not reach the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RefreshingCache(Generic[K, V]):
    """`stale_seconds`: how long past its expiry an entry may still be served while it is
    refreshed; None for as long as it takes. Past that, a get waits for the fresh value."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl_seconds: float,
        max_entries: int = 50_000,
        stale_seconds: float | None = None,
    ):
        self._load = load
        self.ttl = ttl_seconds
        self.stale_seconds = stale_seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._reads: dict[K, asyncio.Task] = {}

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is None:
            return await self._read(key)
        expires, value = entry
        now = time.monotonic()
        if expires <= now:
            refresh = self._read(key)
            if self.stale_seconds is not None and expires + self.stale_seconds <= now:
                return await refresh  # too old to serve
        return value

    def _read(self, key: K) -> asyncio.Task:
        task = self._reads.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key))
            self._reads[key] = task
            task.add_done_callback(lambda done: self._reads.pop(key) if self._reads.get(key) is done else None)
        return task

    async def _fill(self, key: K) -> V:
        value = await self._load(key)
        if self._reads.get(key) is asyncio.current_task():  # not invalidated meanwhile
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, value)
        return value

    def invalidate(self, key: K) -> None:
        """Forget the key; a read already under way started too early to count."""
        self._entries.pop(key, None)
        self._reads.pop(key, None)
