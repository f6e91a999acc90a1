"""`none`: no verification, for senders that cannot sign (use only behind another safeguard,
such as the source's `allowed_cidrs`). Such a source needs no secret, so it gets none."""

from __future__ import annotations

from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class NoneProvider(Provider):
    """No verification: the id from `Idempotency-Key` or `webhook-id`, the type from the body."""

    name = "none"
    needs_secret = False

    def generated_secrets(self) -> list[str]:
        return []

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        delivery = request.header("Idempotency-Key") or request.header("webhook-id")
        return Verified(
            dedup_key=dedup_key(delivery),
            event_type=normalize_event_type(nonempty_string(request.json_object().get("type")), "webhook.received"),
            signature_scheme="none",
        )
