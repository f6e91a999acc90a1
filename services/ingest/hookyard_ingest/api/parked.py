"""The admin API of parked messages (`hookyard.invalid`), behind the admin token.

- `GET /v1/admin/parked?limit=50`: how many are parked, and the first `limit`
- `GET /v1/admin/parked/{key}`: one of them with its headers and body
- `POST /v1/admin/parked/{key}/redrive`: send it back to the queue it came from
- `POST /v1/admin/parked/redrive`: send back every one that came from Hookyard's queues

Looking leaves every message in the queue; a re-driven one is removed only
once its copy is confirmed where it came from (hookyard_common.broker.parked). A
message that is still unusable is simply parked again.
"""

from __future__ import annotations

from aiohttp import web

from hookyard_common.broker import parked
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import utcnow
from hookyard_ingest.edge.errors import ApiError

DEFAULT_LIMIT = 50


class ParkedRoutes:
    def __init__(self, broker: Broker):
        self.broker = broker

    async def list(self, request: web.Request) -> web.Response:
        limit = _limit(request)
        count, found = await parked.look(self.broker, limit)
        now = utcnow()
        return web.json_response({"count": count, "data": [p.summary(now) for p in found]})

    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        _, found = await parked.look(self.broker)
        match = next((p for p in found if p.key == key), None)
        if match is None:
            raise ApiError(404, "unknown_parked_message", f"no parked message {key}")
        return web.json_response(match.detail(utcnow()))

    async def redrive(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        sent = await parked.redrive(self.broker, key)
        if not sent:
            raise ApiError(
                404,
                "unknown_parked_message",
                f"no parked message {key} that came from {parked.REDRIVABLE_QUEUES}",
            )
        return web.json_response({"redriven": 1, "to": sent[0].origin}, status=202)

    async def redrive_all(self, request: web.Request) -> web.Response:
        sent = await parked.redrive(self.broker, None)
        return web.json_response({"redriven": len(sent)}, status=202)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= parked.MAX_SCAN:
        raise ApiError(400, "invalid_limit", f"limit must be a whole number from 1 to {parked.MAX_SCAN}", field="limit")
    return int(raw)
