"""Received events: `GET /v1/received-events[/{event_id}[/attempts]]`, `POST .../{event_id}/resend`.

The authenticated "recent activity" of a tenant's sources (the message log,
records/message_log.py): what arrived, when, from where, how it was
verified, with the raw body and headers; searched as api/search.py
describes. For any event of the tenant (received or its own), sending it
again. `/v1/messages...` are the same routes under their deprecated name
(docs/api.md's glossary: a message is one event's delivery to one endpoint).
"""

from __future__ import annotations

import base64

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.delivery.endpoint_cache import tenant_endpoints
from hookyard_common.delivery.event_status import Status
from hookyard_common.delivery.routing import first_task, recipients
from hookyard_common.records import event_log
from hookyard_common.records.message_log import COLLECTION, event_from_record
from hookyard_common.schemas import Event, Identifier, utcnow
from hookyard_common.store.client import Store
from hookyard_common.store.pagination import after_position
from hookyard_ingest.api.erasure import payload_erased
from hookyard_ingest.api.event_log import attempts_page
from hookyard_ingest.api.search import Candidate, Search, identifier, read_search, search_page
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.metrics import REPLAYS
from hookyard_ingest.edge.request_io import parse_body


class Resend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: Identifier | None = None


SUMMARY_FIELDS = {"body": 0, "headers": 0}


def render(doc: dict, status: Status | None = None, *, full: bool = False) -> dict:
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
        "payload_erased_at": doc["payload_erased_at"].isoformat() if "payload_erased_at" in doc else None,
    }
    if status is not None:
        shown["status"] = status
    if full and "payload_erased_at" in doc:
        shown.update(headers=[], body=None, body_base64=None)
    elif full:
        body = bytes(doc["body"])
        shown["headers"] = doc["headers"]
        shown["body_base64"] = base64.b64encode(body).decode()
        try:
            shown["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            shown["body"] = None
    return shown


class MessageRoutes:
    def __init__(self, store: Store, broker: Broker, scan_limit: int):
        self.store = store
        self.broker = broker
        self.scan_limit = scan_limit

    async def resend(self, request: web.Request) -> web.Response:
        """Deliver any event of the tenant again, to one endpoint or to every endpoint it is for now.

        The tasks go straight to the retrier with a fresh schedule and the
        same `webhook-id` as the event's earlier messages to each endpoint.
        """
        tenant = request[TENANT]
        body: Resend = await parse_body(request, Resend)
        event = await self._event(tenant["_id"], request.match_info["event_id"])
        endpoints = await tenant_endpoints(self.store, tenant["_id"])
        if body.endpoint_id is None:
            chosen = recipients(event, endpoints)
        else:
            chosen = [e for e in endpoints if e.id == body.endpoint_id]
            if not chosen:
                raise ApiError(404, "unknown_endpoint", "no such endpoint")
            if not chosen[0].active:
                raise ApiError(409, "endpoint_disabled", "the endpoint is disabled; enable it first")
        now = utcnow()
        for endpoint in chosen:
            task = first_task(event, endpoint, now)
            await self.broker.publish(
                task.to_bytes(), exchange="", routing_key=topology.RETRY_DUE_QUEUE, message_id=task.message_id
            )
        REPLAYS.labels("resend").inc(len(chosen))
        return web.json_response(
            {"id": event.id, "requeued": len(chosen), "endpoint_ids": [e.id for e in chosen]}, status=202
        )

    async def _event(self, tenant_id: str, event_id: str) -> Event:
        record = await self.store[COLLECTION].find_one({"_id": event_id, "tenant_id": tenant_id})
        logged = record if record is not None else await event_log.logged(self.store, tenant_id, event_id)
        if logged is not None and "payload_erased_at" in logged:
            raise payload_erased(logged["payload_erased_at"])
        if record is not None:
            return event_from_record(record)
        if logged is None or logged["json"] is None:  # unknown, or a stub that could not be stored
            raise ApiError(404, "unknown_event", "no such event (or past its retention)")
        return Event.from_bytes(logged["json"])

    async def attempts(self, request: web.Request) -> web.Response:
        return await attempts_page(self.store, request)

    async def list(self, request: web.Request) -> web.Response:
        tenant_id = request[TENANT]["_id"]
        search = read_search(request, frozenset({"source_id"}))
        query = received_query(tenant_id, search, identifier(request, "source_id"))

        async def candidates():
            found = self.store[COLLECTION].find(query, SUMMARY_FIELDS).sort([("received_at", -1), ("_id", -1)])
            async for doc in found.batch_size(min(self.scan_limit, search.limit + 1)):
                yield Candidate((doc["received_at"], doc["_id"]), doc["_id"], doc)

        return await search_page(self.store, tenant_id, search, candidates(), render, self.scan_limit)

    async def get(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        doc = await self.store[COLLECTION].find_one({"_id": request.match_info["event_id"], "tenant_id": tenant["_id"]})
        if doc is None:
            raise ApiError(404, "unknown_event", "no such received event (or past its retention)")
        return web.json_response(render(doc, full=True))


def received_query(tenant_id: str, search: Search, source_id: str | None) -> dict:
    """The message log's filter: each field a prefix of a `tenant_…` index (message_log.py)."""
    query: dict = {"tenant_id": tenant_id}
    if source_id is not None:
        query["source_id"] = source_id
    if search.event_type is not None:
        query["event_type"] = search.event_type
    window = {}
    if search.since is not None:
        window["$gte"] = search.since
    if search.until is not None:
        window["$lt"] = search.until
    if window:
        query["received_at"] = window
    if search.after is not None:
        query = {"$and": [query, after_position("received_at", *search.after)]}
    return query
