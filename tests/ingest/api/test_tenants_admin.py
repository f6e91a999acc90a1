"""The admin API of tenants against the real stack: list with a cursor, read, disable, delete."""

import asyncio

import aio_pika
import pytest
from prometheus_client import REGISTRY

from helpers import endpoint, publish
from hookyard_common.broker import topology
from hookyard_common.monitors.model import COLLECTION as MONITORS
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.store.client import Store
from monitor_helpers import create_monitor, ping

ADMIN = "test-admin-token"


async def _admin(ingest, method: str, path: str, **kwargs):
    return await ingest.call(method, path, token=ADMIN, **kwargs)


async def _webhook(ingest, source_id: str) -> int:
    status, _, _ = await ingest.call("POST", f"/in/{source_id}", json={"n": 1})
    return status


async def test_admin_lists_tenants_with_a_cursor_and_reads_one(ingest):
    keys = [await ingest.tenant(f"t{n}") for n in range(3)]
    status, first, _ = await _admin(ingest, "GET", "/v1/tenants", params={"limit": "2"})
    assert status == 200 and [t["name"] for t in first["data"]] == ["t2", "t1"] and first["next_cursor"]
    status, second, _ = await _admin(
        ingest, "GET", "/v1/tenants", params={"limit": "2", "cursor": first["next_cursor"]}
    )
    assert [t["name"] for t in second["data"]] == ["t0"] and second["next_cursor"] is None
    status, body, _ = await _admin(ingest, "GET", "/v1/tenants", params={"cursor": "forged"})
    assert status == 400 and body["error"]["code"] == "invalid_cursor"

    tenant_id = ingest.tenant_ids[0]
    status, one, _ = await _admin(ingest, "GET", f"/v1/tenants/{tenant_id}")
    assert status == 200 and one == {**one, "id": tenant_id, "name": "t0", "disabled": False}
    for path in ("/v1/tenants/ten_nobody", "/v1/tenants/" + "x" * 3000, "/v1/tenants/a.b"):
        status, body, _ = await _admin(ingest, "GET", path)
        assert status == 404 and body["error"]["code"] == "unknown_tenant", path
    # A tenant's key is no admin token.
    status, body, _ = await ingest.call("GET", f"/v1/tenants/{tenant_id}", token=keys[0])
    assert status == 401
    status, body, _ = await ingest.call("POST", f"/v1/tenants/{tenant_id}/disable", token=keys[1])
    assert status == 401


async def test_disabling_refuses_the_api_and_webhooks_and_dead_letters_deliveries(platform, receiver):
    key = await platform.tenant("paused")
    tenant_id = platform.tenant_ids[-1]
    other = await platform.tenant("bystander")
    source = await platform.source(key, "none")
    url = receiver.behave("/paused", [(500, 0), (200, 0)])
    await endpoint(platform, key, url, retry_policy={"schedule_seconds": [1.0]})
    await publish(platform, key, "order.created")
    await receiver.wait_for("/paused", 1)  # its retry now waits on a tier

    status, shown, _ = await _admin(platform, "POST", f"/v1/tenants/{tenant_id}/disable")
    assert status == 200 and shown["disabled"] is True
    status, body, _ = await platform.call("GET", "/v1/sources", token=key)
    assert status == 403 and body["error"]["code"] == "tenant_disabled"
    status, body, _ = await platform.call("POST", f"/in/{source['id']}", json={"n": 1})
    assert status == 403 and body["error"]["code"] == "tenant_disabled"
    assert (await platform.call("GET", "/v1/sources", token=other))[0] == 200  # nobody else is touched

    await asyncio.sleep(1.5)  # the retry came due while disabled: not attempted
    assert len(receiver.requests["/paused"]) == 1

    status, shown, _ = await _admin(platform, "POST", f"/v1/tenants/{tenant_id}/enable")
    assert status == 200 and shown["disabled"] is False
    status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
    assert status == 200 and [d["reason"] for d in dead["data"]] == ["tenant_disabled"]
    assert await _webhook(platform, source["id"]) in (200, 202)
    # Replayable once enabled: nothing the tenant was told is accepted was lost.
    status, _, _ = await platform.call("POST", f"/v1/dead-letters/{dead['data'][0]['id']}/retry", token=key)
    assert status in (200, 202)
    await receiver.wait_for("/paused", 2)


async def test_delete_removes_every_collection_and_drops_queued_deliveries(platform, receiver, settings):
    key = await platform.tenant("leaving")
    tenant_id = platform.tenant_ids[-1]
    stay = await platform.tenant("staying")
    for tenant_key, path in ((key, "/leaving"), (stay, "/staying")):
        await platform.source(tenant_key, "none")
        await endpoint(
            platform,
            tenant_key,
            receiver.behave(path, [(500, 0), (200, 0)]),
            event_types=["order.*"],  # not the monitor's own events
            retry_policy={"schedule_seconds": [1.0]},
        )
        made = await create_monitor(platform, tenant_key)
        assert (await ping(platform, made["token"]))[0] == 200
        await publish(platform, tenant_key, "order.created")
    await receiver.wait_for("/leaving", 1)  # a retry of the leaving tenant's now waits on a tier
    dropped = REGISTRY.get_sample_value("hookyard_tasks_dropped_total", {"reason": "endpoint_deleted"}) or 0

    status, body, _ = await _admin(platform, "DELETE", f"/v1/tenants/{tenant_id}")
    assert status == 200 and body["deleted"]["endpoints"] == 1 and body["deleted"]["tenants"] == 1
    assert body["deleted"]["api_keys"] == 1 and body["deleted"]["monitors"] == 1

    await receiver.wait_for("/staying", 2)  # the other tenant's retry is delivered
    await asyncio.sleep(0.5)
    assert len(receiver.requests["/leaving"]) == 1, "delivered after its tenant was deleted"
    after = REGISTRY.get_sample_value("hookyard_tasks_dropped_total", {"reason": "endpoint_deleted"})
    assert after == dropped + 1

    status, body, _ = await platform.call("GET", "/v1/sources", token=key)
    assert status == 401
    status, body, _ = await _admin(platform, "GET", f"/v1/tenants/{tenant_id}")
    assert status == 404
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        monitor_ids = [d["_id"] async for d in store[MONITORS].find({}, {"_id": 1})]
        for declared in COLLECTIONS:
            collection = store[declared.collection]
            left = await collection.count_documents({"$or": [{"tenant_id": tenant_id}, {"_id": tenant_id}]})
            assert left == 0, declared.collection
        # The monitor history left is the staying tenant's own.
        for name in ("monitor_checks", "monitor_flips", "monitor_incidents"):
            assert await store[name].count_documents({"monitor_id": {"$nin": monitor_ids}}) == 0, name
        assert await store["monitor_checks"].count_documents({}) == 1
        assert await store["endpoints"].count_documents({}) == 1
    finally:
        await store.close()
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelClosed):
            await channel.declare_queue(topology.lane_queue(tenant_id), passive=True)
