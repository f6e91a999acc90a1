"""Refusing deliveries to internal addresses (SSRF), checked at connect time.

The check runs on the addresses the connection will actually use, after DNS
resolution and for literal IPs alike, so a hostname that resolves (or
re-resolves) to 127.0.0.1 or 169.254.169.254 is refused. Anything that is
not a public address is refused unless an allow-listed CIDR covers it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import aiohttp
from aiohttp.abc import ResolveResult


class DestinationNotAllowed(aiohttp.ClientConnectionError):
    """The endpoint resolves only to addresses deliveries may not go to."""


class DestinationPolicy:
    def __init__(self, allowed_cidrs: Iterable[str] = ()):
        self.allowed = tuple(ipaddress.ip_network(c, strict=False) for c in allowed_cidrs)

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return True
        return ip.is_global and not ip.is_multicast


class GuardedConnector(aiohttp.TCPConnector):
    def __init__(self, policy: DestinationPolicy, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Sequence | None = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces)
        allowed = [r for r in results if self.policy.permits(r["host"])]
        if not allowed:
            raise DestinationNotAllowed(f"{host} resolves to an address deliveries may not reach")
        return allowed
