"""Signing outbound webhooks, shared by the dispatcher and the retrier.

Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`,
`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, keyed with the base64-decoded `whsec_` secret;
several signatures, space-separated, while a rotated secret is still valid.

Legacy (seed 001): `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>`
with `X-Event-Type`, `X-Event-ID`, `X-Tenant-ID`, `X-Timestamp`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A 256-bit endpoint secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=4096)
def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; raises ValueError when it is not valid base64."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise ValueError("secret must be `whsec_` followed by base64") from None
    if len(key) < 16:
        raise ValueError("secret must hold at least 128 bits")
    return key


def standard_headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode() for s in secrets_
    )
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def legacy_headers(
    secret: str, *, event_id: str, event_type: str, tenant_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Webhook-Signature": f"sha256={digest}",
        "X-Event-Type": event_type,
        "X-Event-ID": event_id,
        "X-Tenant-ID": tenant_id,
        "X-Timestamp": str(timestamp),
    }
