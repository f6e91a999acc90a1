"""The rate_counters collection: the ingest's shared rate-limit counters, one per key and window.

`hookyard_ingest.edge.rate_leases` takes tokens from them in batches; a
counter is worthless once its window is over, so a TTL index on
`expires_at` is the only index (lookups are by `_id`, `"<key>@<window>"`).
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes

COLLECTION = "rate_counters"

INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="window_ttl"),),
)
