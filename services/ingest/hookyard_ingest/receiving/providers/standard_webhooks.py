"""`standard_webhooks`: Standard Webhooks (https://www.standardwebhooks.com/), and Svix.

HMAC-SHA256 over '{webhook-id}.{webhook-timestamp}.{body}', keyed with the base64-decoded
secret (after its 'whsec_' prefix); `webhook-signature` lists 'v1,<base64>' entries
separated by spaces (spec 'Verifying webhooks'). Svix sends the same headers named svix-*.
The secret is ours to issue, so a source created without one gets a new one.
"""

from __future__ import annotations

import base64
import secrets as random_secrets

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    VerificationError,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class StandardWebhooksProvider(Provider):
    """Standard Webhooks: `webhook-*` headers (or Svix's `svix-*`), a `whsec_` secret."""

    name = "standard_webhooks"

    def generated_secrets(self) -> list[str]:
        return ["whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode()]

    @staticmethod
    def _secret_bytes(secrets: list[str]) -> list[bytes]:
        signatures.secret_keys(secrets)  # "source has no secret" when none
        keys = []
        for secret in secrets:
            if not isinstance(secret, str) or not secret:
                continue
            encoded = secret.removeprefix("whsec_")
            key = signatures.unbase64(encoded + "=" * (-len(encoded) % 4))
            if key:
                keys.append(key)
        if not keys:
            raise VerificationError("source secret is not a Standard Webhooks secret")
        return keys

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = self._secret_bytes(secrets)
        family = "webhook"
        if request.header("webhook-signature") is None and request.header("svix-signature"):
            family = "svix"
        msg_id = request.require_header(f"{family}-id")
        raw_ts = request.require_header(f"{family}-timestamp")
        listed = request.require_header(f"{family}-signature")
        timestamp = signatures.parse_timestamp(raw_ts)

        presented = []
        for entry in signatures.entries(listed, None):
            version, _, value = entry.partition(",")
            if version == "v1" and (digest := signatures.presented_digest(value, "base64")) is not None:
                presented.append(digest)
        signatures.check_macs(keys, [(f"{msg_id}.{raw_ts}.".encode(), request.body)], presented)
        signatures.check_age(timestamp, request, tolerance_seconds)

        data = request.json_object()
        return Verified(
            dedup_key=dedup_key(msg_id),
            event_type=normalize_event_type(nonempty_string(data.get("type")), "standard_webhooks.received"),
            signature_scheme="standard-webhooks-v1",
        )
