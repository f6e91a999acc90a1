"""The ingest's fast event encoder produces exactly what the `Event` model would."""

import pytest

from hookyard_common.schemas import Event, Inbound
from hookyard_ingest.receiving import inbound_event


@pytest.mark.parametrize(
    ("body", "media", "encoding"),
    [
        (b' {"type": "a.b", "n": [1, 2.5, null], "s": "\\u00e9 \xc3\xa9", "q": "\\""} ', "application/json", "utf-8"),
        (b"a=1&b=2&b=3", "application/x-www-form-urlencoded", "utf-8"),
        (b"--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\xff\x00--b--", "multipart/form-data", "base64"),
    ],
)
def test_encoded_event_equals_the_model(body, media, encoding):
    fields = dict(
        tenant_id="ten_1",
        source_id="src_1",
        event_type="a.b",
        provider="hmac",
        method="POST",
        url="https://h.example/in/src_1",
        headers=[("Content-Type", media), ("X-Webhook-Signature", "abc")],
        body=body,
        media_type=media,
        client_ip="203.0.113.7",
        signature_scheme="hmac-sha256-hex",
        dedup_key="d-1",
    )
    event_id, encoded = inbound_event.encode(**fields)
    event = Event.from_bytes(encoded)
    assert event.id == event_id and event.payload is None
    text, body_encoding = Inbound.encode_body(body)
    assert body_encoding == encoding
    expected = {k: fields[k] for k in Inbound.model_fields if k in fields and k != "body"}
    assert event.inbound == Inbound(**expected, body=text, body_encoding=body_encoding)
    assert event.inbound.raw_body == body
    again = Event.from_bytes(event.to_bytes())
    assert again == event
