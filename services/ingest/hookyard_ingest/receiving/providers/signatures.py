"""Constant-time signature checks shared by every signing provider.

Rules shared by every scheme:
- `secrets` may hold several active secrets (rotation); any one may match.
  Empty strings are ignored, since an empty HMAC key is a key anyone knows.
- Digests are compared as bytes with `hmac.compare_digest`, never with `==`.
- No request costs more than a valid one (a source URL is not a secret, so anyone can
  send): each secret's MAC of each signed string is computed once, with no early exit,
  then compared with every presented candidate. Candidates are read from at most
  MAX_SIGNATURE_ENTRIES header entries, and an empty or wrongly sized one is dropped before
  any hashing. Everything else that grows with the input (Twilio's form fields, Mailgun's
  token) is capped in its provider's module; `bench/edge_cpu_bench.py` measures the worst
  request of each scheme.
- Timestamped schemes refuse a timestamp further than `tolerance_seconds` from
  `request.now` in either direction. The signature is checked first, so the
  timestamp reasons are only given for requests signed with a known secret.
- Error messages are short and safe to send back: they never hold a secret or
  an expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Collection, Iterable, Sequence

from hookyard_ingest.receiving.providers.base import InboundRequest, VerificationError

SHA256_SIZE = 32
SHA1_SIZE = 20
#: Entries read from a header that lists signatures (Standard Webhooks, Svix, Stripe) or
#: settings (Twilio): senders send one per active secret, a handful at most, so the rest of
#: a longer header is ignored unread. Bounds the work a hostile header can cause.
MAX_SIGNATURE_ENTRIES = 10
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def secret_keys(secrets: Iterable[str]) -> list[bytes]:
    """The source's non-empty secrets as HMAC keys; refused when there is none."""
    found = [s.encode("utf-8") for s in secrets if isinstance(s, str) and s]
    if not found:
        raise VerificationError("source has no secret")
    return found


def _mac(key: bytes, parts: Iterable[bytes], algorithm: str) -> bytes:
    """HMAC of the parts' concatenation, fed in pieces so a large body is never copied."""
    mac = hmac.new(key, digestmod=algorithm)
    for part in parts:
        mac.update(part)
    return mac.digest()


def check_macs(
    keys: Iterable[bytes],
    messages: Sequence[tuple[bytes, ...]],
    presented: Collection[bytes],
    algorithm: str = "sha256",
) -> None:
    """Refuse unless some key's MAC of some signed message equals some presented candidate.

    Each (key, message) MAC is computed once, then compared in constant time with every
    candidate, and no loop stops at the first match: a request costs the same whether it
    verifies or not, however many candidates it presents (they are capped and well sized).
    """
    if not presented:  # nothing well formed to compare with: no hashing at all
        raise VerificationError("no signature matches")
    found = False
    for key in keys:
        for message in messages:
            expected = _mac(key, message, algorithm)
            for candidate in presented:
                found |= hmac.compare_digest(expected, candidate)
    if not found:
        raise VerificationError("no signature matches")


def presented_digest(value: str, encoding: str, size: int = SHA256_SIZE) -> bytes | None:
    """A presented digest of `size` bytes, or None when `value` cannot be one.

    The length is checked before decoding, and the decoded length after (`bytes.fromhex`
    skips spaces), so a huge or truncated value costs no decoding and no hashing.
    """
    length = 2 * size if encoding == "hex" else 4 * -(-size // 3)
    if len(value) != length:
        return None
    decoded = _decode(value, encoding)
    return decoded if decoded is not None and len(decoded) == size else None


def one_digest(value: str, encoding: str, header: str, size: int = SHA256_SIZE) -> list[bytes]:
    """The one digest a single-signature header holds, as a list of candidates: empty when
    it is wrongly sized (no hashing, then 'no signature matches'); malformed when undecodable."""
    found = presented_digest(value, encoding, size)
    if found is not None:
        return [found]
    if _decode(value, encoding) is None:
        raise VerificationError(f"malformed {header} header")
    return []


def sha256_prefixed_header(request: InboundRequest, keys: list[bytes], name: str) -> None:
    """`<name>: sha256=<hex>` holding HMAC-SHA256 of the raw body (GitHub, Meta)."""
    value = request.require_header(name)
    scheme, sep, hexed = value.partition("=")
    if not sep or scheme.lower() != "sha256":
        raise VerificationError(f"malformed {name} header")
    check_macs(keys, [(request.body,)], one_digest(hexed, "hex", name))


def entries(value: str, separator: str | None) -> list[str]:
    """The first MAX_SIGNATURE_ENTRIES entries of a header; the rest is never split."""
    return value.split(separator, MAX_SIGNATURE_ENTRIES)[:MAX_SIGNATURE_ENTRIES]


def _decode(value: str, encoding: str) -> bytes | None:
    return _unhex(value) if encoding == "hex" else unbase64(value)


def _unhex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)  # accepts both cases
    except ValueError:
        return None


def unbase64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_timestamp(raw: object) -> int:
    """An integer epoch-seconds timestamp, as a header string or a JSON number."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and _TIMESTAMP.fullmatch(raw):
        return int(raw)
    raise VerificationError("invalid timestamp")


def check_age(timestamp: int, request: InboundRequest, tolerance_seconds: int) -> None:
    if request.now - timestamp > tolerance_seconds:
        raise VerificationError("timestamp too old")
    if timestamp - request.now > tolerance_seconds:
        raise VerificationError("timestamp in the future")
