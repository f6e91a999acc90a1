"""`slack`: Slack (docs.slack.dev/authentication/verifying-requests-from-slack).

`X-Slack-Signature: v0=<hex>` of HMAC-SHA256(signing secret,
'v0:{X-Slack-Request-Timestamp}:{body}'). Slack checks a new endpoint with a signed
`url_verification` request, answered with its challenge and not delivered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    Reply,
    VerificationError,
    Verified,
    nonempty_string,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type


class SlackProvider(Provider):
    """Slack: the timestamp and body signed with the app's signing secret."""

    name = "slack"

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = signatures.secret_keys(secrets)
        header = request.require_header("X-Slack-Signature")
        raw_ts = request.require_header("X-Slack-Request-Timestamp")
        timestamp = signatures.parse_timestamp(raw_ts)
        version, sep, digest = header.partition("=")
        if not sep or version != "v0":
            raise VerificationError("malformed X-Slack-Signature header")
        presented = signatures.one_digest(digest, "hex", "X-Slack-Signature")
        signatures.check_macs(keys, [(f"v0:{raw_ts}:".encode(), request.body)], presented)
        signatures.check_age(timestamp, request, tolerance_seconds)

        data = request.json_object()
        delivery = nonempty_string(data.get("event_id")) or nonempty_string(data.get("trigger_id"))
        kind = nonempty_string(data.get("type"))
        if kind == "event_callback":
            event = data.get("event")
            inner = nonempty_string(event.get("type")) if isinstance(event, Mapping) else None
            raw_type = f"{kind}.{inner}" if inner else kind
        elif kind:
            raw_type = kind
        elif request.form_value("command"):
            raw_type = "slack.command"
            delivery = request.form_value("trigger_id")
        elif payload := request.form_value("payload"):
            raw_type = "slack.interaction"
            delivery = self._payload_trigger_id(payload)
        else:
            raw_type = None
        return Verified(
            dedup_key=dedup_key(delivery),
            event_type=normalize_event_type(raw_type, "slack.received"),
            signature_scheme="slack-v0",
        )

    @staticmethod
    def _payload_trigger_id(payload: str) -> str | None:
        try:
            parsed = json.loads(payload)
        except ValueError:
            return None
        return nonempty_string(parsed.get("trigger_id")) if isinstance(parsed, dict) else None

    def early_reply(self, request: InboundRequest) -> Reply | None:
        """Slack's endpoint check: answer the challenge, nothing to deliver."""
        data = request.json
        if not isinstance(data, dict) or data.get("type") != "url_verification":
            return None
        return Reply(json.dumps({"challenge": data.get("challenge", "")}), "application/json")
