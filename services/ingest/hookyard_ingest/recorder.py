"""The recorder: from `hookyard.inbound` to the message log and the events exchange.

For each accepted provider message it writes the log record (batched:
one `insert_many` per burst), drops it if the provider already delivered
it (same provider id on the same source), and otherwise publishes it as an
event. The broker message is acked only after both, so a crash anywhere
means a redelivery, never a loss; a redelivered message finds its own log
record and is published again (at least once, same event id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage
from bson import Binary
from hookyard_common import topology
from hookyard_common.batching import Batcher
from hookyard_common.broker import Broker
from hookyard_common.consumer import Reject
from hookyard_common.schemas import Event, InboundMessage
from hookyard_common.store import Store
from pydantic import ValidationError
from pymongo.errors import BulkWriteError

from . import bodies, ingest_metrics

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000


def event_id_for(message: InboundMessage) -> str:
    # Derived, not random: every redelivery of the message yields the same event.
    return "evt_" + message.id.removeprefix("in_")


def to_event(message: InboundMessage) -> Event:
    headers = dict(message.headers)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    json_value, form = bodies.parse(message.body, message.media_type, content_type)
    return Event(
        id=event_id_for(message),
        tenant_id=message.tenant_id,
        event_type=message.event_type,
        payload=bodies.payload_of(message.body, message.media_type, json_value, form),
        occurred_at=message.received_at,
        source_id=message.source_id,
        context={"provider": message.provider, "message_id": message.id},
    )


def log_record(message: InboundMessage, retention: timedelta) -> dict:
    record = {
        "_id": message.id,
        "tenant_id": message.tenant_id,
        "source_id": message.source_id,
        "provider": message.provider,
        "received_at": message.received_at,
        "expires_at": message.received_at + retention,
        "method": message.method,
        "url": message.url,
        "headers": [list(pair) for pair in message.headers],
        "body": Binary(message.body),
        "size": len(message.body),
        "media_type": message.media_type,
        "client_ip": message.client_ip,
        "event_type": message.event_type,
        "event_id": event_id_for(message),
        "signature_scheme": message.signature_scheme,
    }
    if message.dedup_key is not None:
        record["dedup_key"] = message.dedup_key
    return record


class Recorder:
    def __init__(self, store: Store, broker: Broker, retention: timedelta):
        self.messages = store["messages"]
        self.broker = broker
        self.retention = retention
        self.batcher: Batcher[InboundMessage, bool] = Batcher(self._record, max_items=200, max_delay=0.005)

    async def handle(self, delivery: AbstractIncomingMessage) -> None:
        try:
            message = InboundMessage.from_bytes(delivery.body)
        except ValidationError as exc:
            raise Reject(f"not an inbound message: {exc.error_count()} errors") from None
        if not await self.batcher.submit(message):
            ingest_metrics.DUPLICATES.labels(message.provider).inc()
            log.info(
                "duplicate dropped",
                extra={"message_id": message.id, "source_id": message.source_id, "dedup_key": message.dedup_key},
            )
            return
        event = to_event(message)
        await self.broker.publish(
            event.to_bytes(),
            routing_key=topology.routing_key(event.tenant_id, event.event_type),
            message_id=event.id,
        )
        ingest_metrics.RECORDED.labels(message.provider).inc()

    async def _record(self, batch: Sequence[InboundMessage]) -> list[bool]:
        """Insert the batch; per message, False when it duplicates another message."""
        try:
            await self.messages.insert_many([log_record(m, self.retention) for m in batch], ordered=False)
            return [True] * len(batch)
        except BulkWriteError as exc:
            conflicts = [err["index"] for err in exc.details["writeErrors"] if err["code"] == DUPLICATE_KEY]
            if len(conflicts) != len(exc.details["writeErrors"]):
                raise
        fresh = [True] * len(batch)
        for index in conflicts:
            # Our own record already there: a redelivery, to be published again.
            own = await self.messages.find_one({"_id": batch[index].id}, {"_id": 1})
            fresh[index] = own is not None
        return fresh
