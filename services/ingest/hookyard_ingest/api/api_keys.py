"""A tenant's own API keys: `POST/GET /v1/api-keys`, `DELETE /v1/api-keys/{key_id}`, `.../rotate`.

A key is shown once, in the answer that makes it; listings show its id,
name and prefix, never the key or its hash. Revoking deletes the key's
document, so no later lookup finds it; rotating makes a new key with the same
name and gives the old one an expiry (24 h by default), so a tenant can roll
its deployments over before the old key stops working. The last working key
cannot be revoked (rotate it instead): a tenant never locks itself out. Every query names the
calling tenant: another tenant's key id is answered 404 like a made-up one.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.records import api_keys
from hookyard_common.records.api_keys import COLLECTION as API_KEYS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT, Auth
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import list_page, parse_body

#: Enough for every deployment and person of a tenant to have its own; bounds what one tenant stores.
MAX_KEYS_PER_TENANT = 100
DEFAULT_OVERLAP_SECONDS = 86_400
MAX_OVERLAP_SECONDS = 30 * 86_400


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: How long the old key keeps working; 0 ends it now.
    expire_in_seconds: int = Field(DEFAULT_OVERLAP_SECONDS, ge=0, le=MAX_OVERLAP_SECONDS)


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


def public_key(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "prefix": doc["prefix"],
        "created_at": _time(doc["created_at"]),
        "last_used_at": _time(doc.get("last_used_at")),
        "expires_at": _time(doc.get("expires_at")),
    }


def _shown_once(doc: dict, api_key: str) -> web.Response:
    return web.json_response({**public_key(doc), "key": api_key}, status=201)


class ApiKeyRoutes:
    def __init__(self, store: Store, auth: Auth):
        self.store = store
        self.keys = store[API_KEYS]
        self.auth = auth

    async def create(self, request: web.Request) -> web.Response:
        body = await parse_body(request, KeyCreate)
        tenant_id = request[TENANT]["_id"]
        await self._room_for_one(tenant_id)
        doc, api_key = await api_keys.create_key(self.store, tenant_id, body.name)
        return _shown_once(doc, api_key)

    async def list(self, request: web.Request) -> web.Response:
        query = {"tenant_id": request[TENANT]["_id"], **api_keys.live(utcnow())}
        return await list_page(request, self.keys, query, "created_at", public_key, projection={"key_hash": 0})

    async def revoke(self, request: web.Request) -> web.Response:
        key = await self._key(request)
        live = {"tenant_id": key["tenant_id"], **api_keys.live(utcnow())}
        if await self.keys.count_documents(live) <= 1:
            raise ApiError(409, "last_api_key", "this is the tenant's last API key: make or rotate one first")
        await self.keys.delete_one({"_id": key["_id"], "tenant_id": key["tenant_id"]})
        self.auth.forget_key(key["key_hash"])
        return web.Response(status=204)

    async def rotate(self, request: web.Request) -> web.Response:
        body = await parse_body(request, KeyRotate)
        old = await self._key(request)
        await self._room_for_one(old["tenant_id"])
        doc, api_key = await api_keys.create_key(self.store, old["tenant_id"], old["name"])
        # The new key exists before the old one is given an end: a failure in between loses neither.
        await api_keys.expire_key(self.store, old, utcnow() + timedelta(seconds=body.expire_in_seconds))
        self.auth.forget_key(old["key_hash"])
        return _shown_once(doc, api_key)

    async def _key(self, request: web.Request) -> dict:
        key_id = request.match_info["key_id"]
        key = await api_keys.live_key(self.store, request[TENANT]["_id"], key_id[:64], utcnow())
        if key is None:
            raise ApiError(404, "unknown_api_key", "no such API key", key_id=key_id[:64])
        return key

    async def _room_for_one(self, tenant_id: str) -> None:
        if await self.keys.count_documents({"tenant_id": tenant_id}) >= MAX_KEYS_PER_TENANT:
            raise ApiError(
                409,
                "too_many_api_keys",
                f"a tenant may have at most {MAX_KEYS_PER_TENANT} API keys; revoke one first",
                limit=MAX_KEYS_PER_TENANT,
            )
