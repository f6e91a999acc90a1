"""`stripe`: Stripe (docs.stripe.com/webhooks, 'Verify signatures manually').

`Stripe-Signature: t=<ts>,v1=<hex>[,v1=...][,v0=...]`; v1 is HMAC-SHA256 of '{t}.{body}'
keyed with the endpoint secret as UTF-8 (the 'whsec_...' string itself). v0 is ignored.
"""

from __future__ import annotations

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    VerificationError,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class StripeProvider(Provider):
    """Stripe: a timestamped header listing one v1 signature per active endpoint secret."""

    name = "stripe"

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = signatures.secret_keys(secrets)
        header = request.require_header("Stripe-Signature")
        raw_ts: str | None = None
        presented = []
        for item in signatures.entries(header, ","):
            key, _, value = item.strip().partition("=")
            if key == "t" and raw_ts is None:
                raw_ts = value
            elif key == "v1" and (digest := signatures.presented_digest(value, "hex")) is not None:
                presented.append(digest)
        if raw_ts is None:
            raise VerificationError("no timestamp in Stripe-Signature header")
        timestamp = signatures.parse_timestamp(raw_ts)
        if not presented:
            raise VerificationError("no v1 signature in Stripe-Signature header")
        signatures.check_macs(keys, [(raw_ts.encode(), b".", request.body)], presented)
        signatures.check_age(timestamp, request, tolerance_seconds)

        data = request.json_object()
        return Verified(
            dedup_key=dedup_key(nonempty_string(data.get("id"))),
            event_type=normalize_event_type(nonempty_string(data.get("type")), "stripe.received"),
            signature_scheme="stripe-v1",
        )
