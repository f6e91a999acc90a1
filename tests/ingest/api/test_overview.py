"""The operator's overview (`GET /v1/admin/overview`) against a real broker, database and services."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from helpers import publish
from hookyard_common.broker import topology
from hookyard_common.broker.queue_stats import backlog_age
from hookyard_common.delivery.dead_letters import COLLECTION as DEAD_LETTERS


def test_the_backlog_age_runs_from_the_first_sample_after_the_newest_empty_one():
    samples = [{"timestamp": t * 1000, "sample": n} for t, n in [(100, 3), (95, 2), (90, 0), (85, 4), (80, 0)]]
    assert backlog_age(samples, now_ms=103_000) == 8.0  # non-empty since 95 s
    assert backlog_age([{"timestamp": 90_000, "sample": 1}, {"timestamp": 95_000, "sample": 1}], 100_000) == 10.0
    assert backlog_age([{"timestamp": 100_000, "sample": 0}, {"timestamp": 95_000, "sample": 5}], 101_000) is None
    assert backlog_age([], 1.0) is None


async def overview(ingest) -> dict:
    status, body, _ = await ingest.call("GET", "/v1/admin/overview", token=ingest.settings.admin_token)
    assert status == 200, body
    return body


async def test_without_the_management_api_depths_come_by_amqp_and_the_age_is_unknown(start_ingest):
    ingest = await start_ingest(rabbitmq_management_url="")
    key = await ingest.tenant()
    for n in range(3):
        await publish(ingest, key, "order.created", {"n": n})
    body = await overview(ingest)
    queues = {q["name"]: q for q in body["queues"]["data"]}
    assert body["queues"]["source"] == "amqp" and body["queues"]["age_known"] is False
    lane = queues[topology.lane_queue(ingest.tenant_ids[-1])]
    assert (lane["messages"], lane["consumers"], lane["oldest_age_seconds"]) == (3, 0, None)
    assert queues[topology.INVALID_QUEUE]["messages"] == body["parked"]["count"] == 0
    services = {s["name"]: s["status"] for s in body["services"]}
    assert services == {
        "ingest": "ready",
        "dispatcher": "unreachable",
        "retrier": "unreachable",
        "heartbeat": "unreachable",
    }


async def test_a_management_api_that_does_not_answer_falls_back_and_says_so(start_ingest):
    ingest = await start_ingest(rabbitmq_management_url="http://127.0.0.1:9/", service_ready_urls={})
    body = await overview(ingest)
    assert body["queues"]["source"] == "amqp" and "did not answer" in body["queues"]["note"]
    assert {s["name"]: s["status"] for s in body["services"]} == {
        "ingest": "ready",
        "dispatcher": "not configured",
        "retrier": "not configured",
        "heartbeat": "not configured",
    }


async def test_dead_letters_are_counted_per_tenant_and_running_services_are_ready(start_ingest, start_dispatcher):
    ingest = await start_ingest()
    await start_dispatcher()
    client = AsyncMongoClient(ingest.settings.mongo_uri)
    try:
        letters = [{"tenant_id": tenant, "state": "dead"} for tenant in ("ten_a", "ten_b", "ten_b")]
        await client[ingest.settings.mongo_db][DEAD_LETTERS].insert_many(letters)
    finally:
        await client.close()
    body = await overview(ingest)
    assert body["dead_letters"]["by_tenant"] == [{"tenant_id": "ten_b", "count": 2}, {"tenant_id": "ten_a", "count": 1}]
    assert body["dead_letters"]["total"] == 3
    assert {s["name"]: s["status"] for s in body["services"]}["dispatcher"] == "ready"


async def test_the_overview_is_the_operators_only(ingest):
    key = await ingest.tenant()
    status, body, _ = await ingest.call("GET", "/v1/admin/overview", token=key)
    assert status == 401, body
