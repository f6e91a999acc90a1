"""Group concurrent single-item calls into one batched call.

Consumers handle messages concurrently; a `Batcher` lets each handler
`await batcher.submit(item)` while the items are written with one round trip
(e.g. `insert_many`) per batch. A batch goes when it is full or when the
oldest item has waited `max_delay` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int = 200,
        max_delay: float = 0.01,
    ):
        self._flush = flush
        self._max_items = max_items
        self._max_delay = max_delay
        self._items: list[T] = []
        self._waiters: list[asyncio.Future] = []
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: T) -> R:
        """Queue `item`; return its result once its batch is flushed (or raise its error)."""
        future = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._waiters.append(future)
        if len(self._items) >= self._max_items:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_delay, self._send)
        return await future

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        if items:
            asyncio.ensure_future(self._run(items, waiters))

    async def _run(self, items: list[T], waiters: list[asyncio.Future]) -> None:
        try:
            results = await self._flush(items)
        except Exception as exc:  # every item of the batch shares the failure
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter, result in zip(waiters, results, strict=True):
            if not waiter.done():
                if isinstance(result, BaseException):
                    waiter.set_exception(result)
                else:
                    waiter.set_result(result)


class WriteBehind(Generic[T]):
    """Items written in the background, many per call, when nobody needs to wait for them.

    `add` returns at once; a flush goes when `max_items` are buffered or the
    oldest has waited `max_delay`. The buffer is bounded: past `max_pending`
    items, `add` waits for the writes in progress. `drain` writes everything
    left (at shutdown).
    """

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[None]],
        *,
        max_items: int = 500,
        max_delay: float = 0.01,
        max_pending: int = 10_000,
        on_error: Callable[[BaseException, Sequence[T]], None] | None = None,
    ):
        self._write = write
        self._max_items = max_items
        self._max_delay = max_delay
        self._max_pending = max_pending
        self._on_error = on_error
        self._items: list[T] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: set[asyncio.Task] = set()
        self._in_writes = 0

    async def add(self, item: T) -> None:
        if len(self._items) + self._in_writes >= self._max_pending:
            await self.drain()
        self._items.append(item)
        if len(self._items) >= self._max_items:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_delay, self._send)

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        if items:
            task = asyncio.ensure_future(self._run(items))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def _run(self, items: list[T]) -> None:
        self._in_writes += len(items)
        try:
            await self._write(items)
        except Exception as exc:
            if self._on_error is not None:
                self._on_error(exc, items)
        finally:
            self._in_writes -= len(items)

    async def drain(self) -> None:
        self._send()
        if self._writing:
            await asyncio.gather(*self._writing)
