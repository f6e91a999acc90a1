"""What deleting a tenant removes: its documents in every collection, and its lane.

The collections come from the one list start-up ensures
(`runtime/collections.py`), so a collection added there is erased here too
without a change: a document belongs to a tenant by its `tenant_id`, or, for
a monitor's history, by its `monitor_id`. Rate counters are the exception
that needs none: they name sources, not tenants, and expire with their window.

Order matters for what is still queued. The tenant document goes last, so a
delete that fails half-way can be run again (the admin API still finds the
tenant). Endpoints go before the dispatchers and retriers are told
(`announce_change`): a task they take after that finds no endpoint and is
dropped (`hookyard_tasks_dropped_total`), never delivered. The lane queue is
deleted with the events still in it, which nobody may receive any more.
Records already on their way when the delete began (logs are written behind,
`store/buckets.py`; events a dispatcher had already taken from the lane) can
land after the first pass, so a second pass follows once they have settled,
before the answer.
"""

from __future__ import annotations

import asyncio

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.delivery.endpoint_cache import announce_change
from hookyard_common.monitors.model import COLLECTION as MONITORS
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.store.buckets import BUCKET_SECONDS
from hookyard_common.store.client import Store

#: How long the second pass waits: well past the longest a write-behind buffer holds a record.
SETTLE_SECONDS = 10 * BUCKET_SECONDS


async def erase_tenant(store: Store, broker: Broker, tenant_id: str) -> dict[str, int]:
    """Delete everything of the tenant; returns how many documents each collection lost."""
    monitor_ids = [doc["_id"] async for doc in store[MONITORS].find({"tenant_id": tenant_id}, {"_id": 1})]
    owned = {"$or": [{"tenant_id": tenant_id}, {"monitor_id": {"$in": monitor_ids}}]}
    removed = await _delete_owned(store, owned)
    await announce_change(broker, tenant_id)  # caches forget its endpoints: queued tasks are dropped
    await _delete_lane(broker, tenant_id)
    await asyncio.sleep(SETTLE_SECONDS)
    for collection, count in (await _delete_owned(store, owned)).items():
        removed[collection] += count
    removed[TENANTS] = (await store[TENANTS].delete_one({"_id": tenant_id})).deleted_count
    return removed


async def _delete_owned(store: Store, owned: dict) -> dict[str, int]:
    """How many documents matching `owned` each collection but the tenants' lost."""
    return {
        indexes.collection: (await store[indexes.collection].delete_many(owned)).deleted_count
        for indexes in COLLECTIONS
        if indexes.collection != TENANTS
    }


async def _delete_lane(broker: Broker, tenant_id: str) -> None:
    if not broker.lanes:
        return
    try:
        queue = topology.lane_queue(tenant_id)
    except topology.NoLane:  # never had one
        return
    channel = await broker.transient_channel()
    try:
        await channel.queue_delete(queue)
    finally:
        await channel.close()
