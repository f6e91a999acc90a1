"""Refusing deliveries to internal addresses (SSRF), checked at connect time.

The check runs on the addresses the connection will actually use, after DNS
resolution and for literal IPs alike, so a hostname that resolves (or
re-resolves) to 127.0.0.1 or 169.254.169.254 is refused. Anything that is
not a public address is refused unless an allow-listed CIDR covers it.

Some IPv6 addresses are IPv4 addresses in disguise: a NAT64 translator,
a 6to4 or Teredo relay, or the host's own stack carries the packet to the
IPv4 address inside (`64:ff9b::7f00:1` reaches 127.0.0.1). Those are
unwrapped first and the IPv4 inside is what must be public. For the
local-use NAT64 prefix (64:ff9b:1::/48) the operator picks where the IPv4
sits (RFC 6052 allows several layouts), so every layout must decode to a
public address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Well-known NAT64 prefix (RFC 6052): the IPv4 is the last 32 bits.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
#: Local-use NAT64 prefix (RFC 8215): the IPv4 sits where the operator's prefix length puts it.
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
#: IPv4-compatible (deprecated, RFC 4291) and IPv4-translated (RFC 2765) addresses: the last 32 bits.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# RFC 6052 prefix lengths a local-use translator may use beyond /48.
NAT64_PREFIX_LENGTHS = (48, 56, 64, 96)


def _nat64_layouts(ip: ipaddress.IPv6Address) -> list[IPAddress]:
    """The IPv4 address under each RFC 6052 layout; bits 64-71 (the `u` octet) never carry it."""
    packed = ip.packed
    without_u = packed[:8] + packed[9:]
    found: list[IPAddress] = []
    for length in NAT64_PREFIX_LENGTHS:
        start = length // 8
        found.append(ipaddress.IPv4Address(packed[12:] if length == 96 else without_u[start : start + 4]))
    return found


def embedded(ip: IPAddress) -> list[IPAddress]:
    """The addresses a packet to `ip` really goes to: the IPv4 inside a wrapper, or `ip` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.teredo is not None:
        return [ip.teredo[1]]  # the client's address, stored XORed with 0xffffffff
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(ip.packed[12:])]
    if ip in NAT64_LOCAL_USE:
        return _nat64_layouts(ip)
    return [ip]


class DestinationNotAllowed(aiohttp.ClientConnectionError):
    """The endpoint resolves only to addresses deliveries may not go to."""


class DestinationPolicy:
    def __init__(self, allowed_cidrs: Iterable[str] = ()):
        self.allowed = tuple(ipaddress.ip_network(c, strict=False) for c in allowed_cidrs)

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        inner = embedded(ip)
        if any(candidate in network for candidate in (ip, *inner) for network in self.allowed):
            return True
        return all(candidate.is_global and not candidate.is_multicast for candidate in inner)


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


#: How long the API waits on DNS to vet a URL before leaving the check to delivery time.
VET_RESOLVE_SECONDS = 2.0


async def vet_url(url: str, policy: DestinationPolicy) -> str | None:
    """Why a delivery to `url` would be refused, checked before it is accepted (the API's
    early answer); None when it may go. A name that does not resolve in time is let through:
    the connector checks the addresses again when it connects, so nothing relies on this."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            found = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), VET_RESOLVE_SECONDS
            )
        except (OSError, TimeoutError, UnicodeError):
            return None
        addresses = [str(info[4][0]) for info in found]
    if addresses and not any(policy.permits(address) for address in addresses):
        return f"{host} is not a public address (deliveries may not reach it)"
    return None
