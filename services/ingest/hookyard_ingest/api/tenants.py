"""The admin API of tenants: `POST /v1/tenants {"name"}`, `GET /v1/tenants`.

Behind the admin token, which the admin wing's middleware checks (`app.py`).
A tenant's API key is made here and shown once, in the creation's answer;
only its SHA-256 is stored (`edge/auth.py` looks callers up by it).
"""

from __future__ import annotations

import secrets

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.broker.connection import Broker
from hookyard_common.delivery.endpoint_cache import announce_change
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import hash_key
from hookyard_ingest.edge.request_io import parse_body

# The most tenants one listing shows, newest first.
LIST_LIMIT = 1000


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


def public_tenant(tenant: dict) -> dict:
    return {"id": tenant["_id"], "name": tenant["name"], "created_at": tenant["created_at"].isoformat()}


class TenantRoutes:
    def __init__(self, store: Store, broker: Broker):
        self.tenants = store[TENANTS]
        self.broker = broker

    async def create(self, request: web.Request) -> web.Response:
        body: TenantCreate = await parse_body(request, TenantCreate)
        tenant_id = new_id("ten")
        # Its lane first, so an event published the moment this answers is routed to it; should the
        # broker fail, no tenant exists yet (an empty lane without a tenant costs nothing).
        await self.broker.declare_lane(tenant_id)
        api_key = "hy_" + secrets.token_urlsafe(32)
        tenant = {
            "_id": tenant_id,
            "name": body.name,
            "api_key_hash": hash_key(api_key),
            "created_at": utcnow(),
        }
        await self.tenants.insert_one(tenant)
        await announce_change(self.broker, tenant_id)  # every dispatcher starts consuming the lane
        return web.json_response({**public_tenant(tenant), "api_key": api_key}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        docs = await self.tenants.find().sort("created_at", -1).limit(LIST_LIMIT).to_list()
        return web.json_response({"data": [public_tenant(doc) for doc in docs]})
