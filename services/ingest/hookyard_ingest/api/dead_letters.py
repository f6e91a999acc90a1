"""The dead-letter API: list what could not be delivered, and send it again.

- `GET /v1/dead-letters?endpoint_id=&since=&until=&cursor=&limit=`
- `GET /v1/dead-letters/{message_id}`: with the event and every attempt (seed 001's entry)
- `POST /v1/dead-letters/{message_id}/retry`
- `POST /v1/dead-letters/replay {"endpoint_id"?, "since", "until"}` → how many were re-queued, and a `replay_id`
- `GET /v1/dead-letters/replays/{replay_id}` → that replay's progress: in flight, delivered, failed again

A replayed message goes straight to the retrier with a fresh schedule and
the same `webhook-id`; it cannot be put in flight twice (409), and its record
disappears once it is delivered, or returns as dead with the new attempts.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hookyard_common.broker.connection import Broker
from hookyard_common.delivery import attempt_log, dead_letters
from hookyard_common.delivery.endpoint_cache import COLLECTION as ENDPOINTS
from hookyard_common.schemas import DeliveryTask, Identifier, UtcDatetime, new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.api.erasure import payload_erased
from hookyard_ingest.api.event_log import render_attempt
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.metrics import REPLAYS
from hookyard_ingest.edge.request_io import list_page, parse_body


class BulkReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: Identifier | None = None
    since: UtcDatetime
    until: UtcDatetime


def render(doc: dict, retryable: set[str]) -> dict:
    return {
        "id": doc["_id"],
        "endpoint_id": doc["endpoint_id"],
        "event_id": doc["event_id"],
        "event_type": doc["event_type"],
        "attempt_count": doc["attempts"],
        "reason": doc["reason"],
        "dead_at": doc["dead_at"].isoformat(),
        "state": doc["state"],
        "payload_erased_at": doc["payload_erased_at"].isoformat() if "payload_erased_at" in doc else None,
        # Retrying makes sense while the endpoint exists and is active (enable it first), with a payload to send.
        "can_retry": doc["state"] == "dead" and doc["endpoint_id"] in retryable and "payload_erased_at" not in doc,
    }


def shown_event(task: DeliveryTask) -> dict:
    event = task.event.model_dump(mode="json", exclude={"inbound"})
    if task.event.inbound is not None:
        event["inbound"] = {"provider": task.event.inbound.provider, "message_url": f"/v1/messages/{task.event.id}"}
    return event


class DeadLetterRoutes:
    def __init__(self, store: Store, broker: Broker):
        self.store = store
        self.broker = broker

    async def list(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        query = {"tenant_id": tenant["_id"]}
        if "endpoint_id" in request.query:
            query["endpoint_id"] = request.query["endpoint_id"]
        retryable = await self._active_endpoints(tenant["_id"])
        return await list_page(
            request,
            self.store[dead_letters.COLLECTION],
            query,
            "dead_at",
            lambda doc: render(doc, retryable),
            projection={"task": 0},
            time_window=True,
            filters=frozenset({"endpoint_id"}),
        )

    async def get(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        doc = await self.store[dead_letters.COLLECTION].find_one(
            {"_id": request.match_info["message_id"], "tenant_id": tenant["_id"]}
        )
        if doc is None:
            raise ApiError(404, "unknown_dead_letter", "no such dead letter")
        tried = await attempt_log.of_event(self.store, tenant["_id"], doc["event_id"], message_id=doc["_id"])
        event = None if "payload_erased_at" in doc else shown_event(DeliveryTask.model_validate(doc["task"]))
        return web.json_response(
            {
                **render(doc, await self._active_endpoints(tenant["_id"])),
                "event": event,
                "attempts": [render_attempt(a) for a in tried],
            }
        )

    async def _active_endpoints(self, tenant_id: str) -> set[str]:
        docs = await self.store[ENDPOINTS].find({"tenant_id": tenant_id, "active": True}, {"_id": 1}).to_list()
        return {doc["_id"] for doc in docs}

    async def retry(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        message_id = request.match_info["message_id"]
        if await dead_letters.requeue(self.store, self.broker, message_id, tenant["_id"], utcnow()):
            REPLAYS.labels("dead_letter").inc()
            return web.json_response({"id": message_id, "state": "replaying"}, status=202)
        exists = await self.store[dead_letters.COLLECTION].find_one(
            {"_id": message_id, "tenant_id": tenant["_id"]}, {"state": 1, "payload_erased_at": 1}
        )
        if exists is None:
            raise ApiError(404, "unknown_dead_letter", "no such dead letter")
        if "payload_erased_at" in exists:
            raise payload_erased(exists["payload_erased_at"])
        raise ApiError(409, "already_replaying", "this message is already being replayed")

    async def replay(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        body: BulkReplay = await parse_body(request, BulkReplay)
        query: dict = {
            "tenant_id": tenant["_id"],
            "state": "dead",
            "dead_at": {"$gte": body.since, "$lt": body.until},
            "payload_erased_at": {"$exists": False},  # nothing left to send
        }
        if body.endpoint_id:
            query["endpoint_id"] = body.endpoint_id
        now = utcnow()
        replay_id = new_id("rpl")
        requeued = 0
        async for doc in self.store[dead_letters.COLLECTION].find(query, {"_id": 1}):
            requeued += await dead_letters.requeue(self.store, self.broker, doc["_id"], tenant["_id"], now, replay_id)
        REPLAYS.labels("bulk").inc(requeued)
        await self.store[dead_letters.REPLAY_RECORDS].insert_one(
            {
                "_id": replay_id,
                "tenant_id": tenant["_id"],
                "requeued": requeued,
                "created_at": now,
            }
        )
        return web.json_response({"requeued": requeued, "replay_id": replay_id}, status=202)

    async def progress(self, request: web.Request) -> web.Response:
        """A bulk replay's messages: still in flight, dead again, or gone from the list (delivered)."""
        tenant = request[TENANT]
        replay_id = request.match_info["replay_id"]
        replay = await self.store[dead_letters.REPLAY_RECORDS].find_one({"_id": replay_id, "tenant_id": tenant["_id"]})
        if replay is None:
            raise ApiError(404, "unknown_replay", "no such replay (or past its retention)")
        counts = {"replaying": 0, "dead": 0}
        pipeline = [
            {"$match": {"replay_id": replay_id, "tenant_id": tenant["_id"]}},
            {"$group": {"_id": "$state", "n": {"$sum": 1}}},
        ]
        async for row in await self.store[dead_letters.COLLECTION].aggregate(pipeline):
            counts[row["_id"]] = row["n"]
        requeued = replay["requeued"]
        return web.json_response(
            {
                "replay_id": replay_id,
                "requeued": requeued,
                "replaying": counts["replaying"],
                "failed_again": counts["dead"],
                "delivered": max(0, requeued - counts["replaying"] - counts["dead"]),
                "done": counts["replaying"] == 0,
                "created_at": replay["created_at"].isoformat(),
            }
        )
