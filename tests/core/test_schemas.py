"""The wire schemas: versioned, strict, and round-trip through bytes."""

import pytest
from pydantic import ValidationError

from hookyard_common.schemas import DeliveryTask, Event, MonitorStatus, Severity


def test_event_round_trips_through_bytes():
    event = Event(
        tenant_id="ten_1",
        event_type="user.created",
        payload={"user_id": "usr_1"},
        severity="Medium",
        context={"platform": "whatsapp"},
    )
    again = Event.from_bytes(event.to_bytes())
    assert again == event
    assert again.schema_version == 1
    assert again.severity is Severity.medium
    assert again.id.startswith("evt_")


@pytest.mark.parametrize("event_type", ["", "user..created", ".user", "user created", "a" * 201])
def test_event_type_must_be_dotted_segments(event_type):
    with pytest.raises(ValidationError):
        Event(tenant_id="t", event_type=event_type, payload={})


def test_unknown_schema_version_and_fields_are_refused():
    body = Event(tenant_id="t", event_type="a.b", payload=1).model_dump(mode="json")
    with pytest.raises(ValidationError, match="schema_version"):
        Event.model_validate({**body, "schema_version": 2})
    with pytest.raises(ValidationError, match="extra"):
        Event.model_validate({**body, "surprise": True})


def test_delivery_task_keeps_message_id_across_attempts():
    task = DeliveryTask(endpoint_id="ep_1", event=Event(tenant_id="t", event_type="a", payload={}))
    retry = task.model_copy(update={"attempt": 2})
    assert retry.message_id == task.message_id and retry.attempt == 2
    with pytest.raises(ValidationError):
        DeliveryTask(endpoint_id="ep_1", event=task.event, attempt=0)


def test_monitor_status_states():
    status = MonitorStatus(monitor_id="mon_1", tenant_id="t", status="degraded", message="slow")
    assert MonitorStatus.from_bytes(status.to_bytes()).status == "degraded"
    with pytest.raises(ValidationError):
        MonitorStatus(monitor_id="mon_1", tenant_id="t", status="sideways")
