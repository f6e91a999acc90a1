"""The received-message log: `GET /v1/messages` and `GET /v1/messages/{id}`.

The authenticated "recent activity" of a tenant's sources: what arrived,
when, from where, how it was verified, with the raw body and headers.
"""

from __future__ import annotations

import base64
from aiohttp import web
from hookyard_common import attempts
from hookyard_common.message_log import COLLECTION
from hookyard_common.store import Store

from .api_io import list_page
from .errors import ApiError

SUMMARY_FIELDS = {"body": 0, "headers": 0}


def render(doc: dict, *, full: bool = False) -> dict:
    shown = {
        "id": doc["_id"],
        "source_id": doc["source_id"],
        "provider": doc["provider"],
        "received_at": doc["received_at"].isoformat(),
        "event_type": doc["event_type"],
        "dedup_key": doc.get("dedup_key"),
        "method": doc["method"],
        "url": doc["url"],
        "client_ip": doc["client_ip"],
        "media_type": doc["media_type"],
        "size": doc["size"],
        "verification": {"verified": doc["signature_scheme"] != "none", "scheme": doc["signature_scheme"]},
    }
    if full:
        body = bytes(doc["body"])
        shown["headers"] = doc["headers"]
        shown["body_base64"] = base64.b64encode(body).decode()
        try:
            shown["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            shown["body"] = None
    return shown


class MessageRoutes:
    def __init__(self, store: Store, auth):
        self.store = store
        self.auth = auth

    async def attempts(self, request: web.Request) -> web.Response:
        """`GET /v1/messages/{id}/attempts`: every attempt to deliver an event, oldest first."""
        tenant = await self.auth.tenant(request)
        docs = await attempts.of_event(self.store, tenant["_id"], request.match_info["message_id"])
        return web.json_response({"data": [render_attempt(doc) for doc in docs]})


    async def list(self, request: web.Request) -> web.Response:
        tenant = await self.auth.tenant(request)
        query = {"tenant_id": tenant["_id"]}
        if "source_id" in request.query:
            query["source_id"] = request.query["source_id"]
        return await list_page(
            request, self.store[COLLECTION], query, "received_at", render, projection=SUMMARY_FIELDS, time_window=True
        )

    async def get(self, request: web.Request) -> web.Response:
        tenant = await self.auth.tenant(request)
        doc = await self.store[COLLECTION].find_one(
            {"_id": request.match_info["message_id"], "tenant_id": tenant["_id"]}
        )
        if doc is None:
            raise ApiError(404, "unknown_message", "no such message")
        return web.json_response(render(doc, full=True))


def render_attempt(doc: dict) -> dict:
    return {
        "id": doc["id"],
        "message_id": doc["message_id"],
        "event_id": doc["event_id"],
        "endpoint_id": doc["endpoint_id"],
        "attempt": doc["attempt"],
        "at": doc["at"].isoformat(),
        "url": doc["url"],
        "outcome": doc["outcome"],
        "reason": doc["reason"],
        "status": doc["status"],
        "latency_ms": doc["latency_ms"],
        "request_headers": doc["request_headers"],
        "response_body": doc["response_body"],
    }

