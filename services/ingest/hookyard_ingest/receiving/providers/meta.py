"""`meta`: Meta's WhatsApp Cloud API, Messenger and Instagram (developers.facebook.com, Webhooks).

'Validate payloads': `X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(app secret, body).
'Verification Requests': Meta subscribes an endpoint with a GET carrying the source's
`verify_token` option, answered with its challenge (see meta_handshake). The token is a
credential, so it is never shown back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    OptionsError,
    Provider,
    Reply,
    VerificationError,
    Verified,
    nonempty_string,
    option_names,
)
from hookyard_ingest.receiving.providers.event_naming import normalize_event_type


class MetaProvider(Provider):
    """Meta: the body's SHA-256 HMAC with the app secret, and the GET subscription handshake."""

    name = "meta"
    secret_options = frozenset({"verify_token"})

    def check_options(self, options: dict) -> dict:
        opts = option_names(options, ("verify_token",))
        token = opts.get("verify_token")
        if not isinstance(token, str) or not token:
            raise OptionsError("verify_token is required (a non-empty string)")
        return {"verify_token": token}

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        signatures.sha256_prefixed_header(request, signatures.secret_keys(secrets), "X-Hub-Signature-256")
        obj = nonempty_string(request.json_object().get("object"))
        return Verified(
            # Meta sends no delivery id; a retry resends the same bytes.
            dedup_key=hashlib.sha256(request.body).hexdigest(),
            event_type=normalize_event_type(f"meta.{obj}" if obj else None, "meta.received"),
            signature_scheme="meta-sha256",
        )

    def handshake(self, query: Mapping[str, str], options: dict) -> Reply:
        challenge = meta_handshake(query, options)
        if challenge is None:
            raise VerificationError("hub.verify_token does not match")
        return Reply(challenge, "text/plain")


def meta_handshake(query: Mapping[str, str], options: dict) -> str | None:
    """Meta's GET verification request: when hub.mode is 'subscribe' and hub.verify_token
    equals the source's verify_token (constant-time compare), return hub.challenge;
    otherwise None (answer 403)."""
    expected = options.get("verify_token") if isinstance(options, Mapping) else None
    token = query.get("hub.verify_token")
    challenge = query.get("hub.challenge")
    if query.get("hub.mode") != "subscribe" or not challenge:
        return None
    if not isinstance(expected, str) or not expected or not isinstance(token, str):
        return None
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        return None
    return challenge
