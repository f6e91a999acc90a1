"""The received-message log: one MongoDB record per provider webhook accepted.

The dispatcher writes it as events arrive (batched: one `insert_many` per
burst); the ingest's `GET /v1/messages` reads it. The unique (tenant, source,
provider id) index is what recognises a provider's retry of a message
already accepted, so it is dropped instead of delivered twice; with the
tenant in the key, no other tenant's message can claim it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bson import Binary
from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.schemas import Event, Inbound
from hookyard_common.store.client import CollectionIndexes, Store
from hookyard_common.store.isolated_writes import insert_isolated
from hookyard_common.store.retention import Retention

COLLECTION = "messages"

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel(
            [("tenant_id", ASCENDING), ("source_id", ASCENDING), ("dedup_key", ASCENDING)],
            unique=True,
            partialFilterExpression={"dedup_key": {"$type": "string"}},
            name="tenant_source_dedup_key",
        ),
        IndexModel([("tenant_id", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)], name="tenant_recent"),
        IndexModel([("source_id", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)], name="source_recent"),
        # The search's filters (`GET /v1/received-events?source_id=&event_type=`), each within its tenant.
        IndexModel(
            [("tenant_id", ASCENDING), ("source_id", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)],
            name="tenant_source_recent",
        ),
        IndexModel(
            [("tenant_id", ASCENDING), ("event_type", ASCENDING), ("received_at", DESCENDING), ("_id", DESCENDING)],
            name="tenant_type_recent",
        ),
    ),
    # Unique per (source, dedup key) without the tenant: one tenant could pre-claim another's keys.
    # The TTL on a per-record `expires_at`: a changed retention would only reach new records.
    retired=("source_dedup_key", "retention_ttl"),
    retention=Retention("received_at", "message_retention_days"),
)


def record_for(event: Event) -> dict:
    inbound = event.inbound
    assert inbound is not None, "only events that came through a source are logged"
    record = {
        "_id": event.id,
        "tenant_id": event.tenant_id,
        "source_id": event.source_id,
        "provider": inbound.provider,
        "received_at": event.occurred_at,
        "event_type": event.event_type,
        "method": inbound.method,
        "url": inbound.url,
        "headers": [list(pair) for pair in inbound.headers],
        "body": Binary(inbound.raw_body),
        "size": len(inbound.raw_body),
        "media_type": inbound.media_type,
        "client_ip": inbound.client_ip,
        "signature_scheme": inbound.signature_scheme,
    }
    if inbound.dedup_key is not None:
        record["dedup_key"] = inbound.dedup_key
    return record


class Unstorable(Exception):
    """This event cannot be logged (and so not delivered): the message says why."""


async def record(store: Store, events: Sequence[Event]) -> list[bool | Unstorable]:
    """Log a batch; per event, False when it duplicates an earlier message of its source,
    Unstorable when MongoDB cannot store it (written isolated: the others are stored).

    A redelivered event (crash before ack) finds its own record and counts as
    fresh, so it is processed again rather than lost: at least once; unless its
    payload was erased meanwhile, when it is dropped like a duplicate.
    """
    collection = store[COLLECTION]
    outcomes = await insert_isolated(collection, [record_for(e) for e in events])
    fresh: list[bool | Unstorable] = []
    for event, refused in zip(events, outcomes, strict=True):
        if refused is None:
            fresh.append(True)
        elif refused.duplicate:
            own = {"_id": event.id, "payload_erased_at": {"$exists": False}}
            fresh.append(await collection.find_one(own, {"_id": 1}) is not None)
        else:
            fresh.append(Unstorable(refused.reason))
    return fresh


async def erase_payload(store: Store, tenant_id: str, event_id: str, at: datetime) -> datetime | None:
    """Erase a logged message's body and headers, keeping the rest; when it was first erased (None: unknown)."""
    collection = store[COLLECTION]
    mine = {"_id": event_id, "tenant_id": tenant_id}
    await collection.update_one(
        {**mine, "payload_erased_at": {"$exists": False}},
        {"$set": {"body": Binary(b""), "headers": [], "payload_erased_at": at}},
    )
    found = await collection.find_one(mine, {"payload_erased_at": 1})
    return None if found is None else found["payload_erased_at"]


def event_from_record(record: dict) -> Event:
    """The event a logged message was: to send it again, or to catch a listener up."""
    body, encoding = Inbound.encode_body(bytes(record["body"]))
    inbound = Inbound(
        provider=record["provider"],
        method=record["method"],
        url=record["url"],
        headers=[tuple(pair) for pair in record["headers"]],
        body=body,
        body_encoding=encoding,
        media_type=record["media_type"],
        client_ip=record["client_ip"],
        signature_scheme=record["signature_scheme"],
        dedup_key=record.get("dedup_key"),
    )
    return Event(
        id=record["_id"],
        tenant_id=record["tenant_id"],
        event_type=record["event_type"],
        occurred_at=record["received_at"],
        source_id=record["source_id"],
        inbound=inbound,
    )
