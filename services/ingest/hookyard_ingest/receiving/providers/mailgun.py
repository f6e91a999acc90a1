"""`mailgun`: Mailgun (documentation.mailgun.com, 'Securing webhooks').

signature = hex(HMAC-SHA256(signing key, timestamp + token)). JSON webhooks carry it in
`signature: {timestamp, token, signature}`; routes/inbound form posts as top-level fields.
The body itself is not signed: the token (cached here as the dedup key) guards replays.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    VerificationError,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type

#: Longest Mailgun token signed (Mailgun's are 50 characters): the rest of Mailgun's signed
#: string is a timestamp, so a long token is the only way to make its HMAC cost anything.
MAILGUN_TOKEN_MAX = 256


class MailgunProvider(Provider):
    """Mailgun: a signed timestamp and token, in the JSON body or in the form."""

    name = "mailgun"

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = signatures.secret_keys(secrets)
        data = request.json_object()
        if request.form is not None:
            raw_ts: object = request.form_value("timestamp")
            token = request.form_value("token")
            signature = request.form_value("signature")
            event_type = "mailgun.inbound"
        else:
            block = data.get("signature")
            block = block if isinstance(block, Mapping) else {}
            raw_ts = block.get("timestamp")
            token = nonempty_string(block.get("token"))
            signature = nonempty_string(block.get("signature"))
            event_data = data.get("event-data")
            event = event_data.get("event") if isinstance(event_data, Mapping) else None
            event_type = normalize_event_type(
                f"mailgun.{event}" if nonempty_string(event) else None, "mailgun.received"
            )
        if raw_ts is None or token is None or signature is None:
            raise VerificationError("missing Mailgun signature fields")
        timestamp = signatures.parse_timestamp(raw_ts)
        presented = signatures.presented_digest(signature, "hex")
        if presented is None:
            raise VerificationError("malformed Mailgun signature")
        if len(token) > MAILGUN_TOKEN_MAX:  # the signed string is tiny, unless the token is not
            raise VerificationError("malformed Mailgun token")
        signatures.check_macs(keys, [(f"{raw_ts}{token}".encode(),)], [presented])
        signatures.check_age(timestamp, request, tolerance_seconds)
        return Verified(
            dedup_key=dedup_key(token),
            event_type=event_type,
            signature_scheme="mailgun-hmac-sha256",
        )
