"""Which of a tenant's endpoints an event goes to, and as which message.

Shared by the dispatcher (fan-out of every event) and the ingest (resending
an event on demand), so both pick the same endpoints and give each delivery
the same `webhook-id`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from hookyard_common.delivery import payload_filter
from hookyard_common.delivery.endpoints import Endpoint
from hookyard_common.operational_events import (
    ENDPOINT_DISABLED,
    ENDPOINT_FAILING,
    MESSAGE_ATTEMPT_EXHAUSTED,
    is_operational,
)
from hookyard_common.schemas import DeliveryTask, Event

# Bad news is not sent to the endpoint it is about (it is failing or gone);
# `message.attempt.recovered` is, since that endpoint answers again.
FAILURE_NEWS = {ENDPOINT_FAILING, ENDPOINT_DISABLED, MESSAGE_ATTEMPT_EXHAUSTED}


def concerns_failing_endpoint(event: Event, endpoint_id: str) -> bool:
    return (
        is_operational(event)
        and event.event_type in FAILURE_NEWS
        and isinstance(event.payload, dict)
        and event.payload.get("endpoint_id") == endpoint_id
    )


def recipients(event: Event, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """The active endpoints the event is for: its target alone, or every one whose filters match.
    With a `target_url` it is delivered once, so one endpoint lends its settings (secret, auth,
    headers, retries): the target, or else the oldest that matches (seed 001 had one per tenant)."""
    if event.target_endpoint_id is not None:
        chosen = [e for e in endpoints if e.id == event.target_endpoint_id and e.active]
    else:
        chosen = [e for e in endpoints if e.active and e.wants(event.event_type, event.source_id)]
        if any(e.payload_filter for e in chosen):  # the body is read only when some endpoint asks
            payload = payload_filter.payload_of(event)
            chosen = [e for e in chosen if not e.payload_filter or payload_filter.holds(e.payload_filter, payload)]
    chosen = [e for e in chosen if not concerns_failing_endpoint(event, e.id)]
    if event.target_url is not None and chosen:
        return [min(chosen, key=lambda e: (e.created_at, e.id))]
    return chosen


def destination(event: Event, endpoint: Endpoint) -> Endpoint:
    """The endpoint as this event's delivery uses it: at the event's `target_url` when it has one."""
    if event.target_url is None:
        return endpoint
    return endpoint.model_copy(update={"url": event.target_url})


def message_id_for(event_id: str, endpoint_id: str) -> str:
    """The `webhook-id` of an event's delivery to one endpoint: the same on every attempt,
    and after a redelivery of the event too, so receivers can drop duplicates."""
    return "msg_" + hashlib.sha256(f"{event_id}/{endpoint_id}".encode()).hexdigest()[:26]


def first_task(event: Event, endpoint: Endpoint, now: datetime) -> DeliveryTask:
    # Built from values already validated: no second validation on the hot path.
    return DeliveryTask.model_construct(
        message_id=message_id_for(event.id, endpoint.id),
        endpoint_id=endpoint.id,
        event=event,
        attempt=1,
        due_at=now,
        first_attempt_at=now,
    )
