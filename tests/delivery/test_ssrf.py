"""The SSRF guard sees through IPv6 addresses that carry an IPv4 address (pure logic, no I/O).

Each address class gets the same two checks: wrapping a loopback, private or
metadata address is refused, and wrapping a public one is let through, so
the unwrapping is what decides and not a blanket refusal of the class.
"""

import ipaddress

import pytest

from hookyard_common.delivery.ssrf import DestinationPolicy, embedded

POLICY = DestinationPolicy()


def teredo(client: str) -> str:
    """A Teredo address (2001::/32) for `client`: server 65.54.227.120, the client's bits inverted."""
    inverted = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    value = (0x2001_0000 << 96) | (int(ipaddress.IPv4Address("65.54.227.120")) << 64) | inverted
    return str(ipaddress.IPv6Address(value))


def nat64_local(ipv4: str, prefix_length: int) -> str:
    """An address under 64:ff9b:1::/48 with the IPv4 placed as RFC 6052 does for that prefix length."""
    packed = bytearray(ipaddress.IPv6Address("64:ff9b:1::").packed)
    v4 = ipaddress.IPv4Address(ipv4).packed
    if prefix_length == 96:
        packed[12:] = v4
    else:
        spots = [i for i in range(prefix_length // 8, 16) if i != 8][:4]  # skip the u octet
        for spot, byte in zip(spots, v4, strict=False):
            packed[spot] = byte
    return str(ipaddress.IPv6Address(bytes(packed)))


CLASSES = {
    "ipv4-mapped": lambda v4: f"::ffff:{v4}",
    "ipv4-compatible": lambda v4: f"::{v4}",
    "ipv4-translated": lambda v4: f"::ffff:0:{v4}",
    "nat64 well-known": lambda v4: f"64:ff9b::{v4}",
    "6to4": lambda v4: "2002:{:02x}{:02x}:{:02x}{:02x}::1".format(*ipaddress.IPv4Address(v4).packed),
    "teredo": teredo,
    "nat64 local-use /96": lambda v4: nat64_local(v4, 96),
    "nat64 local-use /48": lambda v4: nat64_local(v4, 48),
}


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("internal", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.10"])
def test_a_wrapped_internal_address_is_refused(name, internal):
    address = CLASSES[name](internal)
    assert ipaddress.IPv4Address(internal) in embedded(ipaddress.ip_address(address)), address
    assert not POLICY.permits(address), f"{name} {address} reaches {internal}"


@pytest.mark.parametrize("name", [n for n in CLASSES if not n.startswith("nat64 local-use")])
def test_a_wrapped_public_address_is_let_through(name):
    address = CLASSES[name]("8.8.8.8")
    assert embedded(ipaddress.ip_address(address)) == [ipaddress.IPv4Address("8.8.8.8")]
    assert POLICY.permits(address), address


def test_local_use_nat64_must_be_public_in_every_layout():
    # Which layout the operator's translator uses is unknown: a /96 embedding of a public
    # address decodes to 0.0.x.x under the /48 layout, so it is refused too.
    assert not POLICY.permits(nat64_local("8.8.8.8", 96))
    assert POLICY.permits("64:ff9b:1:808:8:808:808:808")  # 8.8.8.8 in every layout


def test_plain_addresses_and_the_allow_list():
    assert POLICY.permits("2606:4700:4700::1111") and POLICY.permits("1.1.1.1")
    assert not POLICY.permits("::1") and not POLICY.permits("fe80::1%eth0") and not POLICY.permits("ff02::1")
    loopback_allowed = DestinationPolicy(["127.0.0.0/8"])
    assert loopback_allowed.permits("127.0.0.1")
    assert loopback_allowed.permits("64:ff9b::127.0.0.1"), "the allow-list applies to the address inside"
    assert not loopback_allowed.permits("64:ff9b::10.0.0.1")
