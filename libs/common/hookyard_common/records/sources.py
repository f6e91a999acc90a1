"""The sources collection: where a tenant's providers send webhooks, one document each.

The ingest's receiving wing owns what a source is (its provider, secrets,
limits) and reads a source by id on every webhook (cached); the tenant API
lists a tenant's sources newest first, which is the one index.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes

COLLECTION = "sources"

INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),),
)
