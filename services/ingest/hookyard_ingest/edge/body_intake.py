"""What a request body may cost one ingest process: time to arrive, and a share of its memory.

Time: once a request's head is in (`hookyard_common.runtime.head_deadline` times
that), its body must arrive within `HOOKYARD_HTTP_READ_TIMEOUT_SECONDS`.
The deadline is set on the request's stream, so every reader of it (the
public routes' bounded reader, the API's `request.read()`) stops with
`BodyTimeout`, which the middleware answers 408. `BodyTimeout` is a
`TimeoutError` so aiohttp, when it drains what is left of such a body after
the answer, treats it as the timeout it is and closes the connection.

Memory: the public routes (`/in`, `/ping`) reserve their body's size from
one process-wide `BodyBudget` before reading it, and give it back when the
request is answered, so bodies held at once, parsed and encoded copies
included, are bounded by the budget. The reservation is the whole declared
`Content-Length` (the route's limit for a chunked body) taken at once: a
request holds either all of its share or none, so readers can never each
hold part and wait for one another. Over the budget a request waits its
turn (first come, first served), and after `HOOKYARD_BODY_BUDGET_WAIT_SECONDS`
gets 503 with `Retry-After`: providers retry, and under normal load the wait
is a few milliseconds. A size over the whole budget is reserved as the whole
budget, so it still goes through, alone.
"""

from __future__ import annotations

import asyncio
import collections

from aiohttp import StreamReader, web

from hookyard_ingest.edge.errors import ApiError


class BodyTimeout(TimeoutError):
    """The body did not arrive within the read timeout."""


class BudgetExhausted(Exception):
    """No share of the budget came free within the wait."""


class BodyBudget:
    """A byte allowance shared by concurrent requests, granted in arrival order."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.in_use = 0
        self.high_water = 0  # the most ever reserved at once: what the bound is checked against
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def reserve(self, size: int, wait_seconds: float) -> int:
        """Reserve `size` bytes (at most the capacity); the amount reserved, to `release` later."""
        size = min(size, self.capacity)
        if not self._waiters and self.in_use + size <= self.capacity:
            self._grant(size)
            return size
        granted = asyncio.get_running_loop().create_future()
        entry = (size, granted)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(granted), wait_seconds)
        except BaseException as exc:  # out of time, or the request went away: leave the queue clean
            if granted.done():
                self.release(size)  # granted just as the wait ended: hand it on
            else:
                self._waiters.remove(entry)
                self._wake()  # a smaller request behind this one may fit now
            if isinstance(exc, asyncio.TimeoutError):
                raise BudgetExhausted() from None
            raise
        return size

    def release(self, size: int) -> None:
        self.in_use -= size
        self._wake()

    def _grant(self, size: int) -> None:
        self.in_use += size
        self.high_water = max(self.high_water, self.in_use)

    def _wake(self) -> None:
        while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
            size, granted = self._waiters.popleft()
            self._grant(size)
            granted.set_result(None)


RESERVED = web.RequestKey("hookyard_body_reserved", int)


class BodyIntake:
    """The body deadline of every request and the budget of the public routes' bodies."""

    def __init__(self, read_timeout: float, budget: BodyBudget, wait_seconds: float):
        self.read_timeout = read_timeout
        self.budget = budget
        self.wait_seconds = wait_seconds

    async def reserve(self, request: web.Request, size: int) -> None:
        """Hold `size` bytes of the budget for `request` until it is answered; 503 when none come free."""
        try:
            request[RESERVED] = request.get(RESERVED, 0) + await self.budget.reserve(size, self.wait_seconds)
        except BudgetExhausted:
            raise ApiError(
                503, "busy", "the ingest is receiving too much at once; retry shortly", headers={"Retry-After": "1"}
            ) from None

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        """Innermost: times the body, answers its timeout, gives the budget back however the request ends."""
        deadline = None
        # A body already in whole (most webhooks arrive in the head's packets) needs no timer.
        if request.can_read_body and not request.content.is_eof():
            deadline = asyncio.get_running_loop().call_later(self.read_timeout, _expire, request.content)
        try:
            return await handler(request)
        except BodyTimeout:
            raise ApiError(
                408,
                "request_timeout",
                f"the request body was not received within {self.read_timeout:g} s",
                timeout_seconds=self.read_timeout,
            ) from None
        finally:
            if deadline is not None:
                deadline.cancel()
            if reserved := request.get(RESERVED):
                self.budget.release(reserved)


INTAKE = web.AppKey("hookyard_body_intake", BodyIntake)


def _expire(content: StreamReader) -> None:
    if not content.is_eof():
        content.set_exception(BodyTimeout())
