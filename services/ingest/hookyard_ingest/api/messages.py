"""The message log: `GET /v1/messages[/{id}[/attempts]]` and `POST /v1/messages/{id}/resend`.

The authenticated "recent activity" of a tenant's sources: what arrived,
when, from where, how it was verified, with the raw body and headers; and
for any message (a provider's webhook or a tenant's own event) its delivery
attempts, and sending it again.
"""

from __future__ import annotations

import base64

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.delivery import attempt_log
from hookyard_common.delivery.endpoint_cache import tenant_endpoints
from hookyard_common.delivery.routing import first_task, recipients
from hookyard_common.records import event_log
from hookyard_common.records.message_log import COLLECTION, event_from_record
from hookyard_common.schemas import Event, Identifier, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.api.erasure import payload_erased
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.metrics import REPLAYS
from hookyard_ingest.edge.request_io import list_page, parse_body


class Resend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: Identifier | None = None


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
        "payload_erased_at": doc["payload_erased_at"].isoformat() if "payload_erased_at" in doc else None,
    }
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
    def __init__(self, store: Store, broker: Broker):
        self.store = store
        self.broker = broker

    async def resend(self, request: web.Request) -> web.Response:
        """Deliver a message again, to one endpoint or to every endpoint it is for now.

        The tasks go straight to the retrier with a fresh schedule and the
        same `webhook-id` as the message's earlier deliveries to each endpoint.
        """
        tenant = request[TENANT]
        body: Resend = await parse_body(request, Resend)
        event = await self._event(tenant["_id"], request.match_info["message_id"])
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
            raise ApiError(404, "unknown_message", "no such message (or past its retention)")
        return Event.from_bytes(logged["json"])

    async def attempts(self, request: web.Request) -> web.Response:
        """`GET /v1/messages/{id}/attempts`: every attempt to deliver an event, oldest first."""
        tenant = request[TENANT]
        docs = await attempt_log.of_event(self.store, tenant["_id"], request.match_info["message_id"])
        return web.json_response({"data": [render_attempt(doc) for doc in docs]})

    async def list(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        query = {"tenant_id": tenant["_id"]}
        if "source_id" in request.query:
            query["source_id"] = request.query["source_id"]
        return await list_page(
            request,
            self.store[COLLECTION],
            query,
            "received_at",
            render,
            projection=SUMMARY_FIELDS,
            time_window=True,
            filters=frozenset({"source_id"}),
        )

    async def get(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
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
        # Set when the record could not be stored whole (buckets.stub): why.
        "unstorable": doc.get("unstorable"),
    }
