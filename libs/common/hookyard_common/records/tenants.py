"""The tenants collection: one document per tenant, found by the SHA-256 of its API key.

The ingest creates tenants (admin API) and authenticates every tenant call
by its key's hash; the key itself is never stored, so the unique index on
the hash is both the lookup and the guarantee that no two tenants share one.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes

COLLECTION = "tenants"

INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("api_key_hash", ASCENDING)], unique=True, name="api_key_hash"),),
)
