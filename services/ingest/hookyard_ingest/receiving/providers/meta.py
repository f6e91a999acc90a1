"""`meta`: Meta's WhatsApp Cloud API, Messenger and Instagram (developers.facebook.com, Webhooks).

'Validate payloads': `X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(app secret, body).
'Verification Requests': Meta subscribes an endpoint with a GET carrying the source's
`verify_token` option, answered with its challenge (see meta_handshake). The token is a
credential, so it is never shown back.

Event types say what a delivery carries, from its `entry[].changes[]`: WhatsApp puts
messages, delivery statuses and errors all under the field `messages`, so the `value`'s
keys tell them apart (`meta.whatsapp.messages`, `meta.whatsapp.statuses`,
`meta.whatsapp.errors`); any other field names itself (`meta.whatsapp.account_update`,
`meta.page.feed`). Meta batches updates, so one request of several kinds is
`meta.<product>.mixed`: nothing is split, the provider's signature covers the whole body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

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
        return Verified(
            # Meta sends no delivery id; a retry resends the same bytes.
            dedup_key=hashlib.sha256(request.body).hexdigest(),
            event_type=normalize_event_type(meta_event_type(request.json_object()), "meta.received"),
            signature_scheme="meta-sha256",
        )

    def handshake(self, query: Mapping[str, str], options: dict) -> Reply:
        challenge = meta_handshake(query, options)
        if challenge is None:
            raise VerificationError("hub.verify_token does not match")
        return Reply(challenge, "text/plain")


#: Meta's object names, shortened to the product they belong to.
PRODUCTS = {"whatsapp_business_account": "whatsapp"}
#: The keys of a WhatsApp `messages` change's value that say what it carries, the first found wins.
WHATSAPP_KINDS = ("errors", "statuses", "messages")


def meta_event_type(body: Mapping[str, Any]) -> str | None:
    """`meta.<product>[.<kind>]` from the body's object and changes; None without an object."""
    obj = nonempty_string(body.get("object"))
    if obj is None:
        return None
    product = PRODUCTS.get(obj, obj)
    kinds = {_change_kind(change) for change in _changes(body)} - {None}
    if not kinds:
        return f"meta.{product}"
    return f"meta.{product}.{kinds.pop() if len(kinds) == 1 else 'mixed'}"


def _changes(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = body.get("entry")
    if not isinstance(entries, list):
        return []
    found = (entry.get("changes") for entry in entries if isinstance(entry, Mapping))
    return [
        change for changes in found if isinstance(changes, list) for change in changes if isinstance(change, Mapping)
    ]


def _change_kind(change: Mapping[str, Any]) -> str | None:
    field = nonempty_string(change.get("field"))
    value = change.get("value")
    if field == "messages" and isinstance(value, Mapping):
        return next((kind for kind in WHATSAPP_KINDS if value.get(kind)), field)
    return field


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
