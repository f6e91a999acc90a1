"""The events Hookyard itself publishes to a tenant: every type name, defined once.

Tenants subscribe to them like to their own events (`endpoint.*`,
`monitor.down`), so each name here is part of the public contract, next to
schemas.py; emitters use these constants, never a literal, and the tables
in docs/delivery.md#operational-events and docs/monitors.md#alerts describe
their payloads. Two families:

- **delivery news** (`endpoint.*`, `message.attempt.*`), published by the
  delivery worker and the endpoint health keeper with the `OPERATIONAL`
  context flag: nothing is announced about their own delivery, and bad
  news is not sent to the endpoint it is about (delivery/routing.py);
- **monitor alerts** (`monitor.*`), published once per state change by the
  monitors' outbox (monitors/changes.py) as ordinary events of the tenant.
"""

from __future__ import annotations

from hookyard_common.schemas import Event

#: Context flag of delivery news; a tenant's own event may not carry it (broker/publishers.py).
OPERATIONAL = "hookyard_operational"

#: An endpoint has failed without a success for 50, 75 or 90 % of the disable threshold.
ENDPOINT_FAILING = "endpoint.failing"
#: An endpoint was disabled: it answered 410, or failed for the whole threshold.
ENDPOINT_DISABLED = "endpoint.disabled"
#: A message's last attempt failed; it is a dead letter now.
MESSAGE_ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
#: A message was delivered after failed attempts, or on replay.
MESSAGE_ATTEMPT_RECOVERED = "message.attempt.recovered"

#: A monitor is up again (or for the first time).
MONITOR_UP = "monitor.up"
#: A heartbeat monitor missed its interval and is within its grace.
MONITOR_LATE = "monitor.late"
#: A monitor was pushed `degraded`.
MONITOR_DEGRADED = "monitor.degraded"
#: A monitor is down: pushed so, or past its grace without a ping (or, with `renotify_seconds`, still down).
MONITOR_DOWN = "monitor.down"
#: A monitor changed state more than its `flap_threshold` within its window: its changes are not alerted for now.
MONITOR_FLAPPING = "monitor.flapping"
#: A flapping monitor kept one state for a whole window: alerts resume.
MONITOR_STABLE = "monitor.stable"


def operational_event(tenant_id: str, event_type: str, payload: dict) -> Event:
    """Delivery news for a tenant: an ordinary event of the tenant, flagged as Hookyard's."""
    return Event(tenant_id=tenant_id, event_type=event_type, payload=payload, context={OPERATIONAL: True})


def is_operational(event: Event) -> bool:
    return event.context.get(OPERATIONAL) is True
