"""Flood control: a sliding-window rate limiter, a failure throttle, and who the client really is.

`SlidingWindowLimiter` counts in this process's memory. The configured limits
hold across all ingest processes through `rate_leases.LeasedLimiter`, which
takes tokens in small batches from MongoDB and keeps this limiter as its
fallback when MongoDB does not answer. `FailureThrottle` is per process on
purpose: it bounds the database lookups failures can cause in this process.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from aiohttp import web

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.core.memo import memo_short
from hookyard_ingest.edge.errors import ApiError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
K = TypeVar("K")
V = TypeVar("V")

#: An IPv6 client is counted by its /64, the smallest block a site is given, so one
#: host cannot take fresh addresses from its own block to reset its budgets.
IPV6_CLIENT_PREFIX = 64


class SlidingWindowLimiter:
    """Approximate sliding window: this window's count plus the previous window's, weighted
    by how much of it still overlaps. Constant memory per key, no bursts at window edges."""

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.window = window_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._counts: dict[str, tuple[int, int, int]] = {}  # key -> (window index, current, previous)

    def hit(self, key: str, limit: int) -> float | None:
        """Count one request; None when allowed, else seconds to wait before retrying."""
        wait = self.blocked(key, limit)
        if wait is None:
            self.count(key)
        return wait

    def blocked(self, key: str, limit: int) -> float | None:
        """Seconds to wait before one more request fits under `limit`; None when it fits now."""
        index, offset, current, previous = self._state(key)
        if previous * (1 - offset / self.window) + current + 1 > limit:
            return retry_after(self.window, limit, previous, current, offset)
        return None

    def count(self, key: str) -> None:
        index, _, current, previous = self._state(key)
        self._counts[key] = (index, current + 1, previous)
        if len(self._counts) > self.max_keys:
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}

    def _state(self, key: str) -> tuple[int, float, int, int]:
        """(window index, offset into it, this window's count, the previous window's count)."""
        index, offset = divmod(self.clock(), self.window)
        index = int(index)
        window_index, current, previous = self._counts.get(key, (index, 0, 0))
        if window_index != index:
            previous = current if window_index == index - 1 else 0
            current = 0
        return index, offset, current, previous


def retry_after(window: float, limit: int, previous: int, current: int, offset: float) -> float:
    """Seconds until the sliding window has room for one more request."""
    if current + 1 > limit or previous == 0:
        return window - offset  # only the next window helps
    # Wait until the previous window's weight has shrunk enough for one more request.
    needed_overlap = (limit - current - 1) / previous
    return max(0.0, (1 - needed_overlap) * window - offset)


class FailureThrottle:
    """Failed lookups per client IP (unknown ids and tokens, bad API keys): past the budget the
    caller gets a 429 before any lookup, so random ids cannot each cost a database query."""

    def __init__(self, limit: int, window_seconds: float):
        self.limit = limit
        self.limiter = SlidingWindowLimiter(window_seconds)

    def check(self, ip: str) -> None:
        wait = self.limiter.blocked(client_key(ip), self.limit)
        if wait is not None:
            message = f"too many failed lookups from this address (limit {self.limit} per {self.limiter.window:g}s)"
            raise too_many("too_many_failures", message, wait, limit=self.limit)

    def failed(self, ip: str) -> None:
        self.limiter.count(client_key(ip))

    async def look_up(self, cache: RefreshingCache[K, V | None], key: K, ip: str) -> V | None:
        """`cache.get(key)`, where only a lookup that reaches the database spends the budget:
        valid callers from a noisy address (a provider's shared IP) are never refused."""
        if cache.holds(key):
            return await cache.get(key)
        self.check(ip)
        value = await cache.get(key)
        if value is None:
            self.failed(ip)
        return value


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_ip(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The caller's address: X-Forwarded-For is believed only from trusted proxies,
    read right to left, skipping proxies, so a client cannot forge its own."""
    peer = request.remote or ""
    if not trusted or not in_networks(peer, trusted):
        return peer
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
    for hop in reversed([h for h in hops if h]):
        if not in_networks(hop, trusted):
            return hop
    return hops[0] if hops else peer


#: The longest text of an IPv6 address with an IPv4 tail (45 characters), and room for a zone.
ADDRESS_TEXT_MAX = 64


@memo_short(maxsize=4096, longest=ADDRESS_TEXT_MAX)  # parsed once per address, not per request
def client_key(ip: str) -> str:
    """What a client's budgets are counted under: its IPv4 address, or its IPv6 /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def too_many(code: str, message: str, wait: float, **details) -> ApiError:
    """A 429 whose Retry-After is the whole seconds until one more request fits."""
    return ApiError(429, code, message, headers={"Retry-After": str(max(1, math.ceil(wait)))}, **details)
