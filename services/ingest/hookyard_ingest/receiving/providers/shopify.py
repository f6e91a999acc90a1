"""`shopify`: Shopify (shopify.dev/docs/apps/build/webhooks, 'Verify webhooks').

`X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(app client secret, body)).
"""

from __future__ import annotations

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import InboundRequest, Provider, Verified
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class ShopifyProvider(Provider):
    """Shopify: the body's base64 HMAC; the topic is the type."""

    name = "shopify"

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = signatures.secret_keys(secrets)
        header = request.require_header("X-Shopify-Hmac-Sha256")
        presented = signatures.one_digest(header, "base64", "X-Shopify-Hmac-Sha256")
        signatures.check_macs(keys, [(request.body,)], presented)
        delivery = request.header("X-Shopify-Webhook-Id") or request.header("X-Shopify-Event-Id")
        return Verified(
            dedup_key=dedup_key(delivery),
            event_type=normalize_event_type(request.header("X-Shopify-Topic"), "shopify.received"),
            signature_scheme="shopify-hmac-sha256",
        )
