"""`GET /v1/metrics`: a tenant's delivery figures (seed 001), overall and per endpoint;
`GET /v1/endpoints/{endpoint_id}/stats`: one endpoint's attempts over time, for a chart.

Computed from the attempt records over a window (`?hours=24` by default, up
to the retention): messages, successful, failed (dead-lettered), pending
retries, dead letters, attempts and average response time. The series cuts
the window into `?buckets=` equal slices (24 by default) grouped by the
database, so a busy endpoint costs one aggregation, not a scan in Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from hookyard_common.delivery import attempt_log
from hookyard_common.delivery.dead_letters import COLLECTION as DEAD_LETTERS
from hookyard_common.delivery.endpoint_cache import COLLECTION as ENDPOINTS
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


MAX_BUCKETS = 200


def _buckets(request: web.Request) -> int:
    raw = request.query.get("buckets", "24")
    count = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= count <= MAX_BUCKETS:
        raise ApiError(
            400, "invalid_buckets", f"buckets must be a whole number from 1 to {MAX_BUCKETS}", field="buckets"
        )
    return count


def _slice(row: dict | None, start: datetime) -> dict:
    attempts = row["attempts"] if row else 0
    successful = row["successful"] if row else 0
    return {
        "start": start.isoformat(),
        "attempts": attempts,
        "successful": successful,
        "success_rate": round(successful / attempts, 4) if attempts else None,
        "avg_latency_ms": round(row["latency_sum"] / attempts, 2) if row and attempts else None,
    }


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


#: Seed 001's name for each figure (docs/migrating.md), so its dashboards read the same answer.
SEED_NAMES = {
    "total_events": "messages",
    "successful_events": "successful",
    "failed_events": "failed",
    "pending_retries": "pending_retries",
    "dead_letter_count": "dead_letters",
    "avg_response_time_ms": "avg_response_ms",
}


def _seed_names(figures: dict, now: datetime) -> dict:
    return {seed: figures[ours] for seed, ours in SEED_NAMES.items()} | {"last_updated": now.isoformat()}


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
        figures = _figures(total, sum(dead.values()))
        return web.json_response(
            {
                "since": since.isoformat(),
                "total": figures,
                "endpoints": endpoints,
                **_seed_names(figures, utcnow()),
            }
        )

    async def endpoint_series(self, request: web.Request) -> web.Response:
        tenant_id = request[TENANT]["_id"]
        endpoint_id = request.match_info["endpoint_id"]
        hours, count = _window(request), _buckets(request)
        if await self.store[ENDPOINTS].count_documents({"_id": endpoint_id, "tenant_id": tenant_id}, limit=1) == 0:
            raise ApiError(404, "unknown_endpoint", "no such endpoint")
        since = utcnow() - timedelta(hours=hours)
        width_ms = hours * 3_600_000 / count
        pipeline = [
            *attempt_log.since(tenant_id, since),
            {"$match": {"endpoint_id": endpoint_id}},
            {
                "$group": {
                    "_id": {"$floor": {"$divide": [{"$subtract": ["$at", since]}, width_ms]}},
                    "attempts": {"$sum": 1},
                    "successful": {"$sum": {"$cond": [{"$eq": ["$outcome", "success"]}, 1, 0]}},
                    "latency_sum": {"$sum": {"$ifNull": ["$latency_ms", 0]}},
                }
            },
        ]
        rows = {
            int(row["_id"]): row
            for row in await (await self.store[attempt_log.COLLECTION].aggregate(pipeline)).to_list()
        }
        width = timedelta(milliseconds=width_ms)
        return web.json_response(
            {
                "endpoint_id": endpoint_id,
                "since": since.isoformat(),
                "bucket_seconds": width.total_seconds(),
                "buckets": [_slice(rows.get(n), since + n * width) for n in range(count)],
            }
        )
