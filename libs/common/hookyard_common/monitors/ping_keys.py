"""A tenant's ping key: one secret for a fleet of jobs, which ping by slug (`/ping/{ping_key}/{slug}`).

One key per tenant (the document's `_id` is the tenant's id), made and
replaced through the tenant API; the old key stops working with the write
that replaces it (pings look the key up every time: there is no cache to
outlive it). The key is shown to its tenant like a ping token, so it is
stored as it is, and it has its own shape (`pk_` and 43 URL-safe
characters) so that `/ping/{ping_key}/{slug}` never reads as
`/ping/{token}/{kind}`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes, Store

COLLECTION = "monitor_ping_keys"
INDEXES = CollectionIndexes(COLLECTION, (IndexModel([("key", ASCENDING)], unique=True, name="key"),))

PREFIX = "pk_"
SHAPE = re.compile(r"^pk_[A-Za-z0-9_-]{43}$")


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def current(store: Store, tenant_id: str) -> dict | None:
    return await store[COLLECTION].find_one({"_id": tenant_id})


async def replace(store: Store, tenant_id: str, now: datetime) -> dict:
    """A new key for the tenant (its first, or one replacing the old at once)."""
    doc = {"key": new_key(), "tenant_id": tenant_id, "created_at": now}
    await store[COLLECTION].update_one({"_id": tenant_id}, {"$set": doc}, upsert=True)
    return {"_id": tenant_id, **doc}


async def tenant_of(store: Store, key: str) -> str | None:
    """The tenant whose ping key this is."""
    doc = await store[COLLECTION].find_one({"key": key}, {"tenant_id": 1})
    return doc["tenant_id"] if doc is not None else None
