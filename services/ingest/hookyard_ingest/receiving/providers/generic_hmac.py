"""`hmac`: the generic scheme, for senders that sign the raw body with a shared secret.

HMAC-SHA256 of the raw body, hex (default) or base64, in one header. Which header, which
prefix, which encoding and where the event type and id are found are the source's options,
so one provider fits the many senders that sign this way.
"""

from __future__ import annotations

import re
import secrets as random_secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from hookyard_common.header_rules import HEADER_NAME_PATTERN
from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    OptionsError,
    Provider,
    VerificationError,
    Verified,
    nonempty_string,
    option_names,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key, normalize_event_type

_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)


class HmacProvider(Provider):
    """Generic: HMAC-SHA256 of the raw body, hex (default) or base64, in one header."""

    name = "hmac"
    defaults: ClassVar[Mapping[str, Any]] = {
        "signature_header": "X-Webhook-Signature",
        "signature_prefix": "",
        "encoding": "hex",
        "event_type_field": "type",
        "id_header": None,
    }

    def check_options(self, options: dict) -> dict:
        opts = {**self.defaults, **option_names(options, self.defaults)}
        for key in ("signature_header", "id_header"):
            value = opts[key]
            if key == "id_header" and value is None:
                continue
            if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
                raise OptionsError(f"{key} must be an HTTP header name")
        prefix = opts["signature_prefix"]
        if not isinstance(prefix, str) or len(prefix) > 64 or not prefix.isprintable():
            raise OptionsError("signature_prefix must be a short printable string")
        if opts["encoding"] not in ("hex", "base64"):
            raise OptionsError("encoding must be 'hex' or 'base64'")
        field_name = opts["event_type_field"]
        if not isinstance(field_name, str) or not field_name:
            raise OptionsError("event_type_field must be a non-empty string")
        return opts

    def generated_secrets(self) -> list[str]:
        return [random_secrets.token_hex(32)]

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        # Stored options were normalized by check_options when the source was saved.
        opts = {**self.defaults, **options}
        keys = signatures.secret_keys(secrets)
        header = opts["signature_header"]
        value = request.require_header(header)
        prefix = opts["signature_prefix"]
        if prefix:
            if not value.startswith(prefix):
                raise VerificationError(f"{header} lacks the expected prefix")
            value = value[len(prefix) :]
        elif value.startswith("sha256="):
            value = value[len("sha256=") :]
        presented = signatures.one_digest(value, opts["encoding"], header)
        signatures.check_macs(keys, [(request.body,)], presented)

        data = request.json_object()
        delivery = request.header(opts["id_header"]) if opts["id_header"] else None
        return Verified(
            dedup_key=dedup_key(delivery or nonempty_string(data.get("id"))),
            event_type=normalize_event_type(nonempty_string(data.get(opts["event_type_field"])), "hmac.received"),
            signature_scheme=f"hmac-sha256-{opts['encoding']}",
        )
