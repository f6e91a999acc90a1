"""The api_keys collection: a tenant's named API keys, each stored only as its SHA-256.

A key is shown once, when it is made; what stays is its hash (the lookup,
unique, so no two keys collide), a short prefix the owner can recognise it
by, and its times. Rotation gives a key an `expires_at`: the TTL index
removes it some time after (MongoDB sweeps once a minute), and callers check
the time themselves so an expired key is refused on the second.

Tenants made before keys had a collection of their own kept one
`api_key_hash` on their tenant document; `adopt_legacy_key` moves it here
(as the key "default") the first time it is used, so no start-up migration
has to run before old keys work, and replicas of either version agree.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store.client import CollectionIndexes, Store

COLLECTION = "api_keys"

#: What every key starts with, so a leaked one is recognisable (secret scanners, logs).
KEY_PREFIX = "hy_"
#: How many characters after `hy_` a listing shows: enough to tell keys apart, too few to guess one.
SHOWN_CHARACTERS = 8

INDEXES = CollectionIndexes(
    COLLECTION,
    (
        IndexModel([("key_hash", ASCENDING)], unique=True, name="key_hash"),
        IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
    ),
)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_document(tenant_id: str, name: str, api_key: str, expires_at: datetime | None = None) -> dict:
    return {
        "_id": new_id("key"),
        "tenant_id": tenant_id,
        "name": name,
        "key_hash": hash_key(api_key),
        "prefix": api_key.removeprefix(KEY_PREFIX)[:SHOWN_CHARACTERS],
        "created_at": utcnow(),
        "last_used_at": None,
        "expires_at": expires_at,
    }


async def create_key(store: Store, tenant_id: str, name: str) -> tuple[dict, str]:
    """A new key for the tenant: its document and the key itself, which is never stored."""
    api_key = new_key()
    doc = key_document(tenant_id, name, api_key)
    await store[COLLECTION].insert_one(doc)
    return doc, api_key


async def find_key(store: Store, key_hash: str) -> dict | None:
    return await store[COLLECTION].find_one({"key_hash": key_hash}) or await adopt_legacy_key(store, key_hash)


async def adopt_legacy_key(store: Store, key_hash: str) -> dict | None:
    """The key of a tenant made before this collection, moved here; None if no tenant has it."""
    tenant = await store[TENANTS].find_one({"api_key_hash": key_hash}, {"created_at": 1})
    if tenant is None:
        return None
    doc = {
        "_id": new_id("key"),
        "tenant_id": tenant["_id"],
        "name": "default",
        "key_hash": key_hash,
        "prefix": "",  # the key itself was never stored: nothing to show
        "created_at": tenant.get("created_at") or utcnow(),
        "last_used_at": None,
        "expires_at": None,
    }
    try:
        await store[COLLECTION].insert_one(doc)
    except DuplicateKeyError:  # another replica moved it first
        doc = await store[COLLECTION].find_one({"key_hash": key_hash}) or doc
    await store[TENANTS].update_one({"_id": tenant["_id"]}, {"$unset": {"api_key_hash": ""}})
    return doc


def live(now: datetime) -> dict:
    """The filter for keys that still work at `now` (the TTL sweep lags behind their expiry)."""
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


async def live_key(store: Store, tenant_id: str, key_id: str, now: datetime) -> dict | None:
    return await store[COLLECTION].find_one({"_id": key_id, "tenant_id": tenant_id, **live(now)})


async def expire_key(store: Store, key: dict, at: datetime) -> None:
    """Make a key stop working at `at`, or sooner if it already would."""
    if key["expires_at"] is None or key["expires_at"] > at:
        await store[COLLECTION].update_one({"_id": key["_id"]}, {"$set": {"expires_at": at}})


async def mark_used(store: Store, key_id: str, at: datetime) -> None:
    await store[COLLECTION].update_one({"_id": key_id}, {"$set": {"last_used_at": at}})
