"""The sources collection: where a tenant's providers send webhooks, one document each.

The ingest's receiving wing owns what a source is (its provider, secrets,
limits) and reads a source by id on every webhook (cached); the tenant API
lists a tenant's sources newest first (the `tenant` index), and a source's
path alias is unique across tenants (`path_alias`: the deployment's URL space is one).

A refused signature is counted on the source document itself (`$inc`, no
new collection): the sender has already spent its rate limits, so the count
costs at most one write per request those limits let through.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes, Store

COLLECTION = "sources"

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),
        # A path alias names one source in the whole deployment (the ingest routes by it).
        IndexModel([("path_alias", ASCENDING)], unique=True, sparse=True, name="path_alias"),
    ),
)


async def count_signature_failure(store: Store, source_id: str, at: datetime) -> None:
    """One more request to this source whose signature was refused, the latest at `at`."""
    await store[COLLECTION].update_one(
        {"_id": source_id}, {"$inc": {"signature_failures": 1}, "$max": {"last_signature_failure_at": at}}
    )
