"""Payload filters (delivery/payload_filter.py): pure rules, no I/O."""

from __future__ import annotations

from pydantic import TypeAdapter

from hookyard_common.delivery.payload_filter import PayloadFilter, holds, payload_of
from hookyard_common.schemas import Event, Inbound

FILTER = TypeAdapter(PayloadFilter)


def test_equals_compares_type_and_value():
    one = FILTER.validate_python({"path": "n", "equals": 1})
    assert holds(one, {"n": 1}) and holds(one, {"n": 1.0})
    assert not holds(one, {"n": "1"}) and not holds(one, {"n": True}) and not holds(one, {})
    assert not holds(FILTER.validate_python({"path": "n", "equals": True}), {"n": 1})
    null = FILTER.validate_python({"path": "n", "equals": None})
    assert holds(null, {"n": None}) and not holds(null, {})


def test_in_exists_paths_and_conditions_together():
    both = FILTER.validate_python([{"path": "entry.0.group", "in": ["a", "b"]}, {"path": "test", "exists": False}])
    assert holds(both, {"entry": [{"group": "b"}]})
    assert not holds(both, {"entry": [{"group": "b"}], "test": None})  # a null is there
    assert not holds(both, {"entry": [{"group": "c"}]}) and not holds(both, {"entry": []}) and not holds(both, "text")
    assert not holds(FILTER.validate_python({"path": "g", "equals": "a"}), {"g": ["a"]})  # lists never equal a scalar


#: How a provider's request arrived, but for its body and media type.
ARRIVED = {"provider": "twilio", "method": "POST", "url": "https://hub.example/in/src", "headers": []}
ARRIVED |= {"client_ip": "127.0.0.1", "signature_scheme": "none"}


def _inbound_event(body: bytes, media: str) -> Event:
    inbound = Inbound(**ARRIVED, body=body.decode(), media_type=media)
    return Event(tenant_id="ten_1", event_type="twilio.message", source_id="src_1", inbound=inbound)


def test_a_providers_body_is_the_payload():
    assert payload_of(_inbound_event(b'{"group": "meta"}', "application/json")) == {"group": "meta"}
    form = payload_of(_inbound_event(b"From=%2B336&To=1&To=2", "application/x-www-form-urlencoded"))
    assert form == {"From": "+336", "To": ["1", "2"]}
    assert payload_of(_inbound_event(b"{broken", "application/json")) is None
    assert payload_of(_inbound_event(b"hello", "text/plain")) is None
    assert payload_of(Event(tenant_id="ten_1", event_type="user.created", payload={"a": 1})) == {"a": 1}
