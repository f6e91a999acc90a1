"""Flood control: a sliding-window rate limiter, and who the client really is.

Counts are per replica (kept in memory, off the database): with N ingest
replicas behind a balancer, a client may get up to N times the limit.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from .errors import ApiError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
        now = self.clock()
        index, offset = divmod(now, self.window)
        index = int(index)
        window_index, current, previous = self._counts.get(key, (index, 0, 0))
        if window_index != index:
            previous = current if window_index == index - 1 else 0
            current = 0
        overlap = 1 - offset / self.window
        if previous * overlap + current + 1 > limit:
            self._counts[key] = (index, current, previous)
            return self._retry_after(limit, previous, current, offset)
        self._counts[key] = (index, current + 1, previous)
        if len(self._counts) > self.max_keys:
            self._forget_old(index)
        return None

    def _retry_after(self, limit: int, previous: int, current: int, offset: float) -> float:
        if current + 1 > limit or previous == 0:
            return self.window - offset  # only the next window helps
        # Wait until the previous window's weight has shrunk enough for one more request.
        needed_overlap = (limit - current - 1) / previous
        return max(0.0, (1 - needed_overlap) * self.window - offset)

    def _forget_old(self, index: int) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}


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


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def enforce(limiter: SlidingWindowLimiter, key: str, limit: int, what: str) -> None:
    """Count one request against `key`; over `limit`, a 429 naming the limit, with Retry-After."""
    wait = limiter.hit(key, limit)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests ({what} limit {limit} per {limiter.window:g}s)",
            headers={"Retry-After": retry_after_header(wait)},
        )
