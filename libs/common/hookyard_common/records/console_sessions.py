"""The console_sessions collection: who is signed in to the console, stored only as a token's SHA-256.

Signing in trades a tenant's API key (or the admin token) for a random
session token that the browser keeps in an HttpOnly cookie; the key itself
is never stored here, only the hash of the key the session stands for, so
revoking that key (or disabling its tenant) ends the session at its next
call. Expiry slides: each use moves `expires_at` on by the idle period (at
most every `TOUCH_FRACTION` of it, so a busy page costs few writes). Callers
compare `expires_at` themselves, so an idle session is refused on the
second; the TTL index only sweeps the leftovers.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

from pymongo import ASCENDING, IndexModel, ReturnDocument

from hookyard_common.store.client import CollectionIndexes, Store

COLLECTION = "console_sessions"

#: A session is touched again once this fraction of its idle period has passed since the last touch.
TOUCH_FRACTION = 0.1

Role = Literal["tenant", "admin"]

INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="idle_ttl"),),
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    store: Store, role: Role, credential_hash: str, tenant_id: str | None, now: datetime, idle: timedelta
) -> tuple[dict, str]:
    """A new session and its token (the cookie's value), which is never stored."""
    token = secrets.token_urlsafe(32)
    doc = {
        "_id": hash_token(token),
        "role": role,
        "credential_hash": credential_hash,  # the key's (or admin token's) SHA-256, checked on every call
        "tenant_id": tenant_id,  # a tenant session's own tenant; the tenant an admin acts as, or None
        "csrf": secrets.token_urlsafe(32),
        "created_at": now,
        "touched_at": now,
        "expires_at": now + idle,
    }
    await store[COLLECTION].insert_one(doc)
    return doc, token


async def find_live(store: Store, token: str, now: datetime, idle: timedelta) -> dict | None:
    """The session of `token` if it has not expired, its expiry moved on when it is due a touch."""
    doc = await store[COLLECTION].find_one({"_id": hash_token(token)})
    if doc is None or doc["expires_at"] <= now:
        return None
    if now - doc["touched_at"] >= idle * TOUCH_FRACTION:
        await store[COLLECTION].update_one({"_id": doc["_id"]}, {"$set": {"touched_at": now, "expires_at": now + idle}})
        doc |= {"touched_at": now, "expires_at": now + idle}
    return doc


async def act_as(store: Store, session_id: str, tenant_id: str | None) -> dict | None:
    """An admin session made to answer for `tenant_id` (None: for no tenant)."""
    return await store[COLLECTION].find_one_and_update(
        {"_id": session_id, "role": "admin"},
        {"$set": {"tenant_id": tenant_id}},
        return_document=ReturnDocument.AFTER,
    )


async def close_session(store: Store, session_id: str) -> None:
    await store[COLLECTION].delete_one({"_id": session_id})
