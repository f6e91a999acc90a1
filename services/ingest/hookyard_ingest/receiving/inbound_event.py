"""The event the ingest publishes for an accepted provider webhook, serialized fast.

This is the hot path of the whole platform, so the `Event` JSON is written
directly with orjson instead of validating a pydantic model per request, and
the body travels once, as text: what the broker stores per message is what
limits throughput. `tests/ingest/receiving/test_inbound_event.py` checks that the result
validates as an `Event` and equals the model built the slow way.
"""

from __future__ import annotations

import orjson

from hookyard_common.schemas import SCHEMA_VERSION, Inbound, new_id, utcnow


def encode(
    *,
    tenant_id: str,
    source_id: str,
    event_type: str,
    provider: str,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    media_type: str,
    client_ip: str,
    signature_scheme: str,
    dedup_key: str | None,
) -> tuple[str, bytes]:
    """(event id, the event's JSON)."""
    event_id = new_id("evt")
    text, encoding = Inbound.encode_body(body)
    document = {
        "schema_version": SCHEMA_VERSION,
        "id": event_id,
        "tenant_id": tenant_id,
        "event_type": event_type,
        "occurred_at": utcnow(),
        "source_id": source_id,
        "inbound": {
            "provider": provider,
            "method": method,
            "url": url,
            "headers": headers,
            "body": text,
            "body_encoding": encoding,
            "media_type": media_type,
            "client_ip": client_ip,
            "signature_scheme": signature_scheme,
            "dedup_key": dedup_key,
        },
    }
    return event_id, orjson.dumps(document)
