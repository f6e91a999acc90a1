"""The admin API of tenants: create, list, read, disable, enable, delete.

Behind the admin token, which the admin wing's middleware checks (`app.py`).
A new tenant gets its first API key, named "default", shown once in the
creation's answer (`records/api_keys.py`; the tenant manages the rest itself,
`api/api_keys.py`).

Disabling is reversible and loses nothing: the tenant's API calls answer 403
`tenant_disabled`, its sources answer providers 403 (a provider retries
those, and may drop for good a URL answered 410), and its deliveries, once
due, are dead-lettered with the reason `tenant_disabled`, replayable after
enabling. Deleting is not reversible: `tenant_erasure.py` removes its data.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.broker.connection import Broker
from hookyard_common.delivery.endpoint_cache import announce_change
from hookyard_common.records import api_keys
from hookyard_common.records.sources import COLLECTION as SOURCES
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.api.tenant_erasure import erase_tenant
from hookyard_ingest.edge.auth import Auth
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import list_page, parse_body

#: What `new_id("ten")` makes (and the ids of older tenants): anything else is 404 without a lookup.
TENANT_ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


def public_tenant(tenant: dict) -> dict:
    return {
        "id": tenant["_id"],
        "name": tenant["name"],
        "created_at": tenant["created_at"].isoformat(),
        "disabled": bool(tenant.get("disabled")),
    }


class TenantRoutes:
    def __init__(self, store: Store, broker: Broker, auth: Auth, forget_source: Callable[[str], None]):
        self.store = store
        self.tenants = store[TENANTS]
        self.broker = broker
        self.auth = auth
        self.forget_source = forget_source  # the receiving wing's cache, on this replica

    async def create(self, request: web.Request) -> web.Response:
        body: TenantCreate = await parse_body(request, TenantCreate)
        tenant_id = new_id("ten")
        # Its lane first, so an event published the moment this answers is routed to it; should the
        # broker fail, no tenant exists yet (an empty lane without a tenant costs nothing).
        await self.broker.declare_lane(tenant_id)
        tenant = {"_id": tenant_id, "name": body.name, "created_at": utcnow(), "disabled": False}
        # The key before the tenant: a key without its tenant is refused, a tenant without a key is lost.
        _, api_key = await api_keys.create_key(self.store, tenant_id, "default")
        await self.tenants.insert_one(tenant)
        await announce_change(self.broker, tenant_id)  # every dispatcher starts consuming the lane
        return web.json_response({**public_tenant(tenant), "api_key": api_key}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        return await list_page(request, self.tenants, {}, "created_at", public_tenant)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(public_tenant(await self._tenant(request)))

    async def disable(self, request: web.Request) -> web.Response:
        return await self._set_disabled(request, True)

    async def enable(self, request: web.Request) -> web.Response:
        return await self._set_disabled(request, False)

    async def delete(self, request: web.Request) -> web.Response:
        tenant = await self._tenant(request)
        # Disabled first: while its data goes, its keys and sources refuse (on other replicas within
        # HOOKYARD_API_KEY_CACHE_SECONDS), so nothing new is written behind the erasure.
        await self.tenants.update_one({"_id": tenant["_id"]}, {"$set": {"disabled": True}})
        await self._mark_sources(tenant["_id"], True)
        removed = await erase_tenant(self.store, self.broker, tenant["_id"])
        self.auth.forget_tenant(tenant["_id"])
        return web.json_response({"id": tenant["_id"], "deleted": removed})

    async def _set_disabled(self, request: web.Request, disabled: bool) -> web.Response:
        tenant = await self._tenant(request)
        updated = await self.tenants.find_one_and_update(
            {"_id": tenant["_id"]}, {"$set": {"disabled": disabled}}, return_document=True
        )
        if updated is None:  # deleted meanwhile
            raise ApiError(404, "unknown_tenant", "no such tenant")
        await self._mark_sources(tenant["_id"], disabled)
        self.auth.forget_tenant(tenant["_id"])
        await announce_change(self.broker, tenant["_id"])  # dispatchers reread whether it may deliver
        return web.json_response(public_tenant(updated))

    async def _mark_sources(self, tenant_id: str, disabled: bool) -> None:
        """Sources carry their tenant's state, so a webhook costs no second lookup."""
        await self.store[SOURCES].update_many({"tenant_id": tenant_id}, {"$set": {"tenant_disabled": disabled}})
        async for doc in self.store[SOURCES].find({"tenant_id": tenant_id}, {"_id": 1}):
            self.forget_source(doc["_id"])

    async def _tenant(self, request: web.Request) -> dict:
        tenant_id = request.match_info["tenant_id"]
        tenant = await self.tenants.find_one({"_id": tenant_id}) if TENANT_ID_SHAPE.fullmatch(tenant_id) else None
        if tenant is None:
            raise ApiError(404, "unknown_tenant", "no such tenant")
        return tenant
