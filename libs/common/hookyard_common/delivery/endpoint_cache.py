"""A tenant's endpoints, cached per replica for the dispatcher and the retrier.

The ingest announces every change to a tenant's endpoints on the broker
(`hookyard.changes`, fanned out to one small queue per replica), and each
replica forgets that tenant's entry at once: a new endpoint gets the very
next event. Should a notice be lost (a replica reconnecting), an entry is
still reread after `HOOKYARD_ENDPOINT_CACHE_SECONDS`, and never served more
than that again past its expiry.
"""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractIncomingMessage
from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core.cache import RefreshingCache
from hookyard_common.delivery.endpoints import Endpoint
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import new_id
from hookyard_common.store.client import CollectionIndexes, Store

log = logging.getLogger(__name__)

COLLECTION = "endpoints"

# The dispatcher loads a tenant's endpoints per event (cached); the API lists them newest first.
INDEXES = CollectionIndexes(
    COLLECTION,
    (IndexModel([("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="tenant"),),
)


async def tenant_endpoints(store: Store, tenant_id: str) -> list[Endpoint]:
    """Every endpoint of a tenant, read from the database, each knowing whether its tenant is disabled."""
    docs = await store[COLLECTION].find({"tenant_id": tenant_id}).to_list()
    if not docs:
        return []
    tenant = await store[TENANTS].find_one({"_id": tenant_id}, {"disabled": 1})
    disabled = bool(tenant and tenant.get("disabled"))
    return [Endpoint.model_validate({**doc, "tenant_disabled": disabled}) for doc in docs]


class EndpointCache(RefreshingCache[str, list[Endpoint]]):
    def __init__(self, store: Store, ttl_seconds: float):
        async def load(tenant_id: str) -> list[Endpoint]:
            return await tenant_endpoints(store, tenant_id)

        super().__init__(load, ttl_seconds, stale_seconds=ttl_seconds)

    async def find(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        return next((e for e in await self.get(tenant_id) if e.id == endpoint_id), None)

    async def follow_changes(self, broker: Broker) -> None:
        """Forget a tenant's endpoints whenever the ingest announces a change to them."""
        channel = await broker.channel(prefetch=256)
        # Named by us, not the server, so the robust channel can declare it again after a reconnect.
        queue = await channel.declare_queue(f"hookyard.changes.{new_id('rep')}", exclusive=True, auto_delete=True)
        await queue.bind(topology.CHANGES_EXCHANGE)

        async def forget(message: AbstractIncomingMessage) -> None:
            self.invalidate(message.body.decode())

        await queue.consume(forget, no_ack=True)


async def announce_change(broker: Broker, tenant_id: str) -> None:
    """Tell every dispatcher and retrier that the tenant's endpoints changed.

    Best effort: if the broker cannot take the notice, replicas still see the
    change within HOOKYARD_ENDPOINT_CACHE_SECONDS.
    """
    try:
        await broker.publish(tenant_id.encode(), exchange=topology.CHANGES_EXCHANGE, routing_key="", mandatory=False)
    except Exception as exc:
        log.warning("could not announce an endpoint change", extra={"tenant_id": tenant_id, "error": repr(exc)})
