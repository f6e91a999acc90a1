"""The tenants collection: one document per tenant (its name, times, and `disabled` flag).

Its API keys live in `records/api_keys.py`. Tenants made before that kept
one `api_key_hash` here; the sparse unique index still finds those until
their first use moves them (`api_keys.adopt_legacy_key`).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes

COLLECTION = "tenants"

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("api_key_hash", ASCENDING)], unique=True, sparse=True, name="legacy_api_key_hash"),
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="recent"),
    ),
    retired=("api_key_hash",),
)
