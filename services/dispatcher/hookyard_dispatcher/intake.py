"""The dispatcher's intake: every event from `hookyard.dispatch`, checked and recorded.

An event that is not valid (schema, version), whose tenant does not match
its routing key or its publisher, or that carries fields only Hookyard's
services may set without being published by one (publishers.py) is
rejected into `hookyard.invalid`, with the reason. An event that came
through a source is written to the message log (batched); a provider's
repeat delivery of the same message is dropped here, before any fan-out.
A tenant's own event is written to the event log (in buckets, behind), so
it can be resent later; one that carries an `idempotency_key` is let through
only if it holds the key (records/idempotency_keys.py, batched the same way):
a repeat of the tenant's key within the window, published straight onto the
broker or twice by the ingest, is dropped like a provider's retry.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter
from pydantic import ValidationError

from hookyard_common.broker import outages, publishers
from hookyard_common.broker.consumer import Reject
from hookyard_common.core import logs
from hookyard_common.core.batching import Batcher
from hookyard_common.records import idempotency_keys, message_log
from hookyard_common.records.event_log import EventLog
from hookyard_common.schemas import Event
from hookyard_common.store.client import Store
from hookyard_common.store.isolated_writes import storable_problem

log = logging.getLogger(__name__)

RECORDED = Counter("hookyard_inbound_recorded_total", "Provider messages written to the message log.", ["provider"])
DUPLICATES = Counter(
    "hookyard_inbound_duplicates_total",
    "Provider messages dropped because the provider had already delivered them (same provider id).",
    ["provider"],
)
REPEATS = Counter(
    "hookyard_event_repeats_total",
    "Tenants' events dropped because another event of the tenant holds their idempotency key.",
)


class Intake:
    def __init__(self, store: Store, service_users: Collection[str], idempotency_window: timedelta):
        self.service_users = service_users
        self.batcher: Batcher[Event, bool | message_log.Unstorable] = Batcher(
            lambda events: message_log.record(store, events), max_items=200, max_delay=0.005
        )
        self.keys: Batcher[Event, bool | idempotency_keys.Unsettled] = Batcher(
            lambda events: idempotency_keys.settle(store, events, idempotency_window), max_items=200, max_delay=0.005
        )
        self.events = EventLog(store)

    async def read(self, delivery: AbstractIncomingMessage) -> Event | None:
        """The event to fan out, or None when it is a duplicate already handled."""
        try:
            event = Event.from_bytes(delivery.body)
        except ValidationError as exc:
            raise outages.unusable("a valid event", exc) from None
        logs.bind(tenant_id=event.tenant_id, event_id=event.id)
        # A tenant publishing on the broker may only publish as itself, and not as a source.
        if reason := publishers.refusal(event, delivery.routing_key or "", delivery.user_id, self.service_users):
            raise Reject(reason)
        # Published straight onto the broker, past the ingest's checks: one that could never be
        # stored or sent again (a dead letter, a retry) is refused now, before any delivery.
        problem = storable_problem([event.payload, event.context])
        if problem is not None:
            raise Reject(f"the event {problem}")
        if event.inbound is None:
            return await self._tenant_event(event, delivery.body)
        provider = event.inbound.provider
        try:
            fresh = await self.batcher.submit(event)
        except message_log.Unstorable as exc:  # alone: the rest of its batch is logged
            raise Reject(f"cannot be logged: {exc}") from None
        if not fresh:
            DUPLICATES.labels(provider).inc()
            log.info("duplicate dropped", extra={"event_id": event.id, "dedup_key": event.inbound.dedup_key})
            return None
        RECORDED.labels(provider).inc()
        return event

    async def _tenant_event(self, event: Event, published: bytes) -> Event | None:
        if event.idempotency_key is not None:
            try:
                holds = await self.keys.submit(event)
            except idempotency_keys.Unsettled as exc:
                raise Reject(f"its idempotency key cannot be stored: {exc}") from None
            if not holds:
                REPEATS.inc()
                log.info("repeat dropped", extra={"event_id": event.id, "idempotency_key": event.idempotency_key})
                return None
        await self.events.record(event, published)  # written behind, for resending
        return event
