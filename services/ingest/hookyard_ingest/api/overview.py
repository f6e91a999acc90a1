"""The operator's overview (`GET /v1/admin/overview`): the platform's state in one answer.

- queues: each Hookyard queue's depth, consumers and oldest message's age,
  from RabbitMQ's management API (HOOKYARD_RABBITMQ_MANAGEMENT_URL), else by
  AMQP passive declares with the age unknown (`broker/queue_stats.py`); a
  management API that does not answer falls back the same way and says why;
- parked: how many messages wait in `hookyard.invalid`, and the first few;
- dead letters: how many each tenant has (the most first);
- services: the ingest's own readiness, and each other service's `/readyz`
  at HOOKYARD_SERVICE_READY_URLS (a service not named there is shown as not
  configured: in Kubernetes the probes are the kubelet's, and the ingest
  cannot guess where the others run).

It is read-only and bounded: one management call or a declare per queue
(lanes of at most `MAX_LANES` tenants), one aggregation over the dead
letters' tenant index, one short look at the parked queue, and probes with
a short timeout, side by side.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

from hookyard_common.broker import parked, queue_stats, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core.settings import Settings
from hookyard_common.delivery.dead_letters import COLLECTION as DEAD_LETTERS
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.runtime.runner import LIFECYCLE
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

#: At most this many tenants' lanes are declared when the management API is not known.
MAX_LANES = 200
#: The tenants with the most dead letters, listed.
MAX_TENANTS = 100
#: Parked messages shown (the rest at /v1/admin/parked).
SHOWN_PARKED = 10
PROBE_SECONDS = 2.0


class OverviewRoutes:
    def __init__(self, store: Store, broker: Broker, settings: Settings):
        self.store = store
        self.broker = broker
        self.settings = settings
        self.vhost = queue_stats.vhost_of(settings.amqp_url)

    async def get(self, request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session:
            queues, dead, others = await asyncio.gather(
                self._queues(session), self._dead_letters(), self._services(session)
            )
        own = await request.config_dict[LIFECYCLE].readiness()
        now = utcnow()
        count, shown = await parked.look(self.broker, SHOWN_PARKED)
        return web.json_response(
            {
                "generated_at": now.isoformat(),
                "queues": queues,
                "parked": {"count": count, "data": [message.summary(now) for message in shown]},
                "dead_letters": dead,
                "services": [{"name": "ingest", "status": own["status"], "reason": own.get("reason")}, *others],
            }
        )

    async def _queues(self, session: aiohttp.ClientSession) -> dict:
        url = self.settings.rabbitmq_management_url
        note = None
        if url:
            try:
                stats = await queue_stats.from_management(session, url, self.vhost, utcnow())
                return {"source": "management", "age_known": True, "data": [s.view() for s in stats]}
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("the management API did not answer", extra={"error": repr(exc)})
                note = f"the management API did not answer ({type(exc).__name__}): depths by AMQP, age unknown"
        names = [spec.name for spec in topology.queue_specs(self.settings.retry_tiers_ms)]
        tenants = self.store[TENANTS].find({}, {"_id": 1}).sort("_id", 1).limit(MAX_LANES)
        names += [topology.lane_queue(t["_id"]) async for t in tenants if not topology.LANE_UNSAFE.search(t["_id"])]
        stats = await queue_stats.by_declare(self.broker.connection, names)
        answer = {"source": "amqp", "age_known": False, "data": [s.view() for s in stats]}
        return answer | {"note": note} if note else answer

    async def _dead_letters(self) -> dict:
        rows = await (
            await self.store[DEAD_LETTERS].aggregate(
                [
                    {"$group": {"_id": "$tenant_id", "count": {"$sum": 1}}},
                    {"$sort": {"count": -1, "_id": 1}},
                    {"$limit": MAX_TENANTS},
                ]
            )
        ).to_list()
        return {
            "total": await self.store[DEAD_LETTERS].estimated_document_count(),
            "by_tenant": [{"tenant_id": row["_id"], "count": row["count"]} for row in rows],
        }

    async def _services(self, session: aiohttp.ClientSession) -> list[dict]:
        named = self.settings.service_ready_urls
        known = {"dispatcher", "retrier", "heartbeat"} | set(named)
        probes = [self._probe(session, name, named[name]) for name in sorted(known) if name in named]
        unnamed = [{"name": name, "status": "not configured"} for name in sorted(known - set(named))]
        return [*await asyncio.gather(*probes), *unnamed]

    @staticmethod
    async def _probe(session: aiohttp.ClientSession, name: str, url: str) -> dict:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=PROBE_SECONDS)) as response:
                body = await response.json(content_type=None) if response.content_length != 0 else {}
                status = "ready" if response.status == 200 else "not ready"
                return {"name": name, "status": status, "reason": (body or {}).get("reason"), "url": url}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return {"name": name, "status": "unreachable", "reason": type(exc).__name__, "url": url}
