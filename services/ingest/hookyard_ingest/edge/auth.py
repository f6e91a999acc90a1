"""Who is calling: the admin token, or a tenant's API key.

API keys are shown once, at creation (`api/tenants.py`); only their SHA-256
is stored. Lookups are cached briefly per replica so the database is not
asked on every call, and a key found invalid is remembered apart (bounded),
so it neither costs a query per retry nor evicts valid keys. A key not in
memory is looked up only within the caller's failure budget
(`limits.FailureThrottle`), so random keys cannot drive one query each.

The wings' middlewares (`app.py`) call these checks before any route runs;
a tenant route reads its caller from the request, `request[TENANT]`.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.store.client import Store
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import FailureThrottle, Network, client_ip

TENANT_CACHE_SECONDS = 30.0

#: The calling tenant's document, put on the request by the tenant API's middleware.
TENANT = web.RequestKey("hookyard_tenant", dict)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


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
    ):
        self.admin_token = admin_token
        self.failures = failures
        self.trusted = trusted

        async def load(key_hash: str) -> dict | None:
            return await store[TENANTS].find_one({"api_key_hash": key_hash})

        self._tenants = RefreshingCache(load, TENANT_CACHE_SECONDS, absent_seconds=absent_seconds)

    def require_admin(self, request: web.Request) -> None:
        token = _bearer(request)
        if not self.admin_token:
            raise ApiError(403, "admin_disabled", "the admin API is off: set HOOKYARD_ADMIN_TOKEN")
        ip = client_ip(request, self.trusted)
        self.failures.check(ip)  # no guessing the admin token either
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            self.failures.failed(ip)
            raise ApiError(401, "unauthorized", "invalid admin token")

    async def tenant(self, request: web.Request) -> dict:
        """The calling tenant's document, or a 401."""
        key_hash = hash_key(_bearer(request))
        tenant = await self.failures.look_up(self._tenants, key_hash, client_ip(request, self.trusted))
        if tenant is None:
            raise ApiError(401, "unauthorized", "invalid API key")
        return tenant
