"""`GET /v1/metrics`: a tenant's delivery figures (seed 001), overall and per endpoint.

Computed from the attempt records over a window (`?hours=24` by default, up
to the retention): messages, successful, failed (dead-lettered), pending
retries, dead letters, attempts and average response time.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from hookyard_common.delivery import attempt_log
from hookyard_common.delivery.dead_letters import COLLECTION as DEAD_LETTERS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError


def _window(request: web.Request) -> float:
    raw = request.query.get("hours", "24")
    try:
        # ASCII only: float() also reads other scripts' digits ("١٢").
        hours = float(raw) if raw.isascii() else -1
    except ValueError:
        hours = -1
    if not 0 < hours <= 24 * 90:
        raise ApiError(400, "invalid_window", "hours must be a number above 0 and at most 2160", field="hours")
    return hours


def _figures(row: dict, dead: int) -> dict:
    messages, successful = row["messages"], row["successful"]
    return {
        "messages": messages,
        "successful": successful,
        "failed": dead,
        "pending_retries": max(0, messages - successful - dead),
        "dead_letters": dead,
        "attempts": row["attempts"],
        "avg_response_ms": round(row["latency_sum"] / row["attempts"], 2) if row["attempts"] else None,
    }


class DeliveryMetrics:
    def __init__(self, store: Store):
        self.store = store

    async def get(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        since = utcnow() - timedelta(hours=_window(request))
        per_message = [
            *attempt_log.since(tenant["_id"], since),
            {
                "$group": {
                    "_id": {"endpoint": "$endpoint_id", "message": "$message_id"},
                    "delivered": {"$max": {"$cond": [{"$eq": ["$outcome", "success"]}, 1, 0]}},
                    "attempts": {"$sum": 1},
                    "latency_sum": {"$sum": "$latency_ms"},
                }
            },
            {
                "$group": {
                    "_id": "$_id.endpoint",
                    "messages": {"$sum": 1},
                    "successful": {"$sum": "$delivered"},
                    "attempts": {"$sum": "$attempts"},
                    "latency_sum": {"$sum": "$latency_sum"},
                }
            },
        ]
        rows = await (await self.store[attempt_log.COLLECTION].aggregate(per_message)).to_list()
        dead_rows = await (
            await self.store[DEAD_LETTERS].aggregate(
                [
                    {"$match": {"tenant_id": tenant["_id"], "dead_at": {"$gte": since}}},
                    {"$group": {"_id": "$endpoint_id", "count": {"$sum": 1}}},
                ]
            )
        ).to_list()
        dead = {row["_id"]: row["count"] for row in dead_rows}
        endpoints = {row["_id"]: _figures(row, dead.get(row["_id"], 0)) for row in rows}
        total = {"messages": 0, "successful": 0, "attempts": 0, "latency_sum": 0.0}
        for row in rows:
            for field in total:
                total[field] += row[field]
        return web.json_response(
            {
                "since": since.isoformat(),
                "total": _figures(total, sum(dead.values())),
                "endpoints": endpoints,
            }
        )
