"""Tenants and who is calling: the admin token, and tenants' API keys.

API keys are shown once, at creation; only their SHA-256 is stored. Lookups
are cached briefly per replica so the database is not asked on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from aiohttp import web
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store import Store
from pydantic import BaseModel, ConfigDict, Field

from .errors import ApiError

TENANT_CACHE_SECONDS = 30.0


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


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class Auth:
    def __init__(self, store: Store, admin_token: str):
        self.store = store
        self.admin_token = admin_token
        self._cache: dict[str, tuple[float, dict | None]] = {}

    def require_admin(self, request: web.Request) -> None:
        token = _bearer(request)
        if not self.admin_token:
            raise ApiError(403, "admin_disabled", "the admin API is off: set HOOKYARD_ADMIN_TOKEN")
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            raise ApiError(401, "unauthorized", "invalid admin token")

    async def tenant(self, request: web.Request) -> dict:
        """The calling tenant's document, or a 401."""
        key_hash = hash_key(_bearer(request))
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            tenant = cached[1]
        else:
            tenant = await self.store["tenants"].find_one({"api_key_hash": key_hash})
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (time.monotonic() + TENANT_CACHE_SECONDS, tenant)
        if tenant is None:
            raise ApiError(401, "unauthorized", "invalid API key")
        return tenant

    async def create_tenant(self, name: str) -> dict:
        api_key = "hy_" + secrets.token_urlsafe(32)
        tenant = {
            "_id": new_id("ten"),
            "name": name,
            "api_key_hash": hash_key(api_key),
            "created_at": utcnow(),
        }
        await self.store["tenants"].insert_one(tenant)
        return {**public_tenant(tenant), "api_key": api_key}


def public_tenant(tenant: dict) -> dict:
    return {"id": tenant["_id"], "name": tenant["name"], "created_at": tenant["created_at"].isoformat()}
