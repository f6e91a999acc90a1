"""`/v1/ping-key`: the tenant's ping key, read, made or replaced (hookyard_common.monitors.ping_keys)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from hookyard_common.monitors import ping_keys
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError


def render(doc: dict, base_url: str) -> dict:
    return {
        "ping_key": doc["key"],
        "ping_url_template": f"{base_url}/ping/{doc['key']}/{{slug}}",
        "created_at": doc["created_at"].isoformat(),
    }


class PingKeyRoutes:
    def __init__(self, store: Store, base_url: Callable[[web.Request], str], clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.base_url = base_url
        self.clock = clock

    async def get(self, request: web.Request) -> web.Response:
        doc = await ping_keys.current(self.store, request[TENANT]["_id"])
        if doc is None:
            raise ApiError(404, "no_ping_key", "this tenant has no ping key yet: POST /v1/ping-key makes one")
        return web.json_response(render(doc, self.base_url(request)))

    async def replace(self, request: web.Request) -> web.Response:
        """Make the tenant's ping key, or replace it: the old one stops working at once."""
        doc = await ping_keys.replace(self.store, request[TENANT]["_id"], self.clock())
        return web.json_response(render(doc, self.base_url(request)), status=201)
