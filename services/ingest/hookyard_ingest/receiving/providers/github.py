"""`github`: GitHub (docs.github.com, 'Validating webhook deliveries').

`X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(secret, body); no timestamp.
`X-GitHub-Delivery` is a GUID per delivery, kept on redeliveries.
"""

from __future__ import annotations

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class GitHubProvider(Provider):
    """GitHub: the body's SHA-256 HMAC; the type is the event and its action."""

    name = "github"

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        signatures.sha256_prefixed_header(request, signatures.secret_keys(secrets), "X-Hub-Signature-256")
        event = request.header("X-GitHub-Event")
        action = nonempty_string(request.json_object().get("action"))
        raw_type = f"{event}.{action}" if event and action else event
        return Verified(
            dedup_key=dedup_key(request.header("X-GitHub-Delivery")),
            event_type=normalize_event_type(raw_type, "github.received"),
            signature_scheme="github-sha256",
        )
