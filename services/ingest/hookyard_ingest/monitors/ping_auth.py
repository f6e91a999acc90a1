"""Signed pings: the signed string, its timestamp, and the two exceptions a monitor may choose.

A monitor with a secret takes pings carrying `X-Hookyard-Timestamp` (Unix
seconds) and `X-Webhook-Signature`: the hex HMAC-SHA256, keyed with the
secret, of `{timestamp}.{what}.{body}`, where `what` is what the URL says
after the token or slug: the kind (`start`, `down`, `3`; empty for a bare
heartbeat) and `?` and the raw query when there is one. The time is inside
the MAC, so a captured ping is refused once it is further than
HOOKYARD_SIGNATURE_TOLERANCE_SECONDS from now (either way): it cannot be
replayed forever; and so is what it says, so a replay within the tolerance
cannot be turned into another kind (a heartbeat into `/down`). Pure, no I/O.

The exceptions, each a setting of the monitor:
- `legacy_signature`: the body-only signature of seed 004 (and GitHub's
  `X-Hub-Signature-256`) is accepted too, over the raw body or, as seed 004
  checked it, over the body as JavaScript's `JSON.stringify` writes it again
  (js_stringify.py); it holds no time, so such pings can be replayed, which
  is why it is off for new monitors (but on for one given a secret by seed
  004's name, `webhookSecret`);
- `unsigned_heartbeats`: a bare heartbeat (no kind in the path, no status
  in the query, no message, no body) may come unsigned, for senders that
  cannot sign (seed 004's heartbeat GET). It can only say "alive"; every
  other form stays signed, `/start` included: it says no status, but it opens
  a run whose deadline can make the monitor down. A signature that is sent is
  always checked.

Every form is judged alike whether it came by token or by ping key and slug:
the key only finds the monitor, the monitor's secret signs the ping.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from hookyard_ingest.monitors import js_stringify

SIGNATURE_HEADER = "X-Webhook-Signature"
# The body-only scheme under GitHub's name (`sha256=<hex>`), for a GitHub webhook on a legacy monitor.
GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMP_HEADER = "X-Hookyard-Timestamp"
# Query parameters that make a ping say more than "alive" (ping_signal.py).
SAYING = ("status", "msg", "message")
#: The signed string, as the refusals name it.
SIGNED = "{timestamp}.{what}.{body}"
# Unix seconds in decimal: ten digits until the year 2286; more is not a time we accept.
MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True)
class Refusal:
    """Why a ping's signature is refused: the 401's code and message."""

    code: str
    message: str


@dataclass(frozen=True)
class Presented:
    """What the ping shows: its signature and timestamp headers, as sent."""

    signature: str | None
    timestamp: str | None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Presented:
        return cls(headers.get(SIGNATURE_HEADER) or headers.get(GITHUB_SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER))


def mac_ok(secret: bytes, signed: bytes, presented: str | None) -> bool:
    """`presented` is the hex HMAC-SHA256 of `signed` (a `sha256=` prefix allowed), compared in constant time."""
    digest = (presented or "").strip().removeprefix("sha256=")
    if len(digest) != 2 * hashlib.sha256().digest_size:  # wrongly sized: refused unhashed
        return False
    expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest.lower().encode("utf-8", "replace"), expected.encode())


def bare_heartbeat(path_status: str | None, query: Mapping[str, str], body: bytes) -> bool:
    """A ping that can say nothing but "alive": what `unsigned_heartbeats` lets through unsigned."""
    return path_status is None and not any(name in query for name in SAYING) and not body.strip()


def what_it_says(kind: str | None, raw_query: str) -> str:
    """The middle of the signed string: the URL's kind after the token or slug, and its raw query."""
    return (kind or "") + (f"?{raw_query}" if raw_query else "")


def refusal(
    secret: bytes,
    what: str,
    body: bytes,
    presented: Presented,
    now: float,
    tolerance_seconds: int,
    *,
    legacy: bool,
) -> Refusal | None:
    """None when the ping is signed as the monitor asks; else why not. `what`: `what_it_says`."""
    if presented.timestamp is None:
        if legacy and _body_signed(secret, body, presented.signature):
            return None
        if not legacy and presented.signature:
            return Refusal("missing_timestamp", f"{TIMESTAMP_HEADER} is required: sign '{SIGNED}'")
        return _bad_signature(presented, legacy)
    stamp = presented.timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > MAX_TIMESTAMP_DIGITS:
        return Refusal("invalid_timestamp", f"{TIMESTAMP_HEADER} must be Unix seconds, a whole number")
    if not mac_ok(secret, f"{stamp}.{what}.".encode() + body, presented.signature):
        return _bad_signature(presented, legacy)
    age = now - int(stamp)
    if abs(age) > tolerance_seconds:
        when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
        return Refusal(
            "stale_timestamp", f"{TIMESTAMP_HEADER} is {when}; pings are accepted within {tolerance_seconds} s"
        )
    return None


def _body_signed(secret: bytes, body: bytes, presented: str | None) -> bool:
    """The body-only MAC: of the raw body, or of `JSON.stringify` of it (what seed 004 verified)."""
    if mac_ok(secret, body, presented):
        return True
    stringified = js_stringify.of_body(body) if presented else None
    return stringified is not None and stringified != body and mac_ok(secret, stringified, presented)


def _bad_signature(presented: Presented, legacy: bool) -> Refusal:
    reason = "missing" if not presented.signature else "does not match"
    signed = f"'{SIGNED}' (or the raw body)" if legacy else f"'{SIGNED}'"
    return Refusal("invalid_signature", f"{SIGNATURE_HEADER} {reason}: send the hex HMAC-SHA256 of {signed}")
