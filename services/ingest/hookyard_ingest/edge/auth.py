"""Who is calling: the admin token, or a tenant's API key.

API keys are shown once, at creation (`api/api_keys.py`); only their
SHA-256 is stored (`records/api_keys.py`). Keys and tenants are cached
per replica for HOOKYARD_API_KEY_CACHE_SECONDS so the database is not asked
on every call, and never served past that: a key revoked, or a tenant
disabled or deleted, is refused at once by the replica that was told and
within that time by every other (while MongoDB is unreachable, a replica
keeps honouring the keys it knew, so a key revoked during an outage is
refused once the database answers again). A key found invalid is remembered apart
(bounded), so it neither costs a query per retry nor evicts valid keys. A
key not in memory is looked up only within the caller's failure budget
(`limits.FailureThrottle`), so random keys cannot drive one query each.

A key's `last_used_at` is written behind the answer, at most once a minute
per key and replica, so a busy key costs no write per request.

The wings' middlewares (`app.py`) call these checks before any route runs;
a tenant route reads its caller from the request, `request[TENANT]`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from aiohttp import web

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.records import api_keys
from hookyard_common.records.api_keys import hash_key
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import FailureThrottle, Network, client_ip

log = logging.getLogger(__name__)

TENANT_CACHE_SECONDS = 30.0
#: How often, at most, one replica writes a key's `last_used_at`.
LAST_USED_EVERY_SECONDS = 60.0

#: The calling tenant's document, put on the request by the tenant API's middleware.
TENANT = web.RequestKey("hookyard_tenant", dict)


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send `Authorization: Bearer <api key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


class Auth:
    def __init__(
        self,
        store: Store,
        admin_token: str,
        failures: FailureThrottle,
        trusted: tuple[Network, ...] = (),
        absent_seconds: float = TENANT_CACHE_SECONDS,
        cache_seconds: float = TENANT_CACHE_SECONDS,
    ):
        self.store = store
        self.admin_token = admin_token
        self.failures = failures
        self.trusted = trusted

        async def load_key(key_hash: str) -> dict | None:
            return await api_keys.find_key(store, key_hash)

        async def load_tenant(tenant_id: str) -> dict | None:
            return await store[TENANTS].find_one({"_id": tenant_id})

        # stale_seconds=0: an expired entry is read again before it is used, never served stale, so
        # a revocation holds within cache_seconds; while MongoDB does not answer, what was known holds
        # (keep_on_failure): the tenant API keeps publishing events through a database outage.
        self._keys = RefreshingCache(
            load_key, cache_seconds, stale_seconds=0, absent_seconds=absent_seconds, keep_on_failure=True
        )
        self._tenants = RefreshingCache(load_tenant, cache_seconds, stale_seconds=0, keep_on_failure=True)
        self._used: dict[str, float] = {}  # key id -> when this replica last wrote its last_used_at
        self._writes: set[asyncio.Task] = set()

    def require_admin(self, request: web.Request) -> None:
        self.check_admin(_bearer(request), request)

    def check_admin(self, token: str, request: web.Request) -> None:
        """The admin token, or a 401 (403 while the admin API is off), within the caller's failure budget."""
        if not self.admin_token:
            raise ApiError(403, "admin_disabled", "the admin API is off: set HOOKYARD_ADMIN_TOKEN")
        ip = client_ip(request, self.trusted)
        self.failures.check(ip)  # no guessing the admin token either
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            self.failures.failed(ip)
            raise ApiError(401, "unauthorized", "invalid admin token")

    async def tenant(self, request: web.Request) -> dict:
        """The calling tenant's document; a 401 for an unknown, revoked or expired key, a 403
        for a disabled tenant."""
        return await self.tenant_of_key(hash_key(_bearer(request)), request)

    async def tenant_of_key(self, key_hash: str, request: web.Request) -> dict:
        """`tenant`, for a key known by its SHA-256 (a console session's)."""
        key = await self.failures.look_up(self._keys, key_hash, client_ip(request, self.trusted))
        now = utcnow()
        if key is None or (key["expires_at"] is not None and key["expires_at"] <= now):
            raise ApiError(401, "unauthorized", "invalid API key")
        tenant = await self.tenant_by_id(key["tenant_id"])
        self._note_use(key["_id"])
        return tenant

    async def tenant_by_id(self, tenant_id: str) -> dict:
        """A tenant whose routes may answer: a 401 once deleted, a 403 while disabled."""
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:  # deleted
            raise ApiError(401, "unauthorized", "invalid API key")
        if tenant.get("disabled"):
            raise ApiError(403, "tenant_disabled", "this tenant is disabled; ask the operator to enable it")
        return tenant

    def forget_key(self, key_hash: str) -> None:
        """A key revoked or changed here: this replica reads it again on its next use."""
        self._keys.invalidate(key_hash)

    def forget_tenant(self, tenant_id: str) -> None:
        self._tenants.invalidate(tenant_id)

    def _note_use(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._used.get(key_id, -LAST_USED_EVERY_SECONDS) < LAST_USED_EVERY_SECONDS:
            return
        if len(self._used) >= 100_000:
            self._used.clear()  # bounded; at worst one early write per key
        self._used[key_id] = now
        task = asyncio.create_task(self._write_use(key_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_use(self, key_id: str) -> None:
        try:
            await api_keys.mark_used(self.store, key_id, utcnow())
        except Exception as exc:  # a usage time is not worth failing or retrying a call for
            log.warning("could not record a key's use", extra={"key_id": key_id, "error": repr(exc)})
