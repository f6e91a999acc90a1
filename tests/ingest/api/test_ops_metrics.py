"""The metrics the alerts rely on move when they should, on a real ingest and a real retrier."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core import metrics
from hookyard_common.schemas import DeliveryTask, Event, utcnow


async def scrape(client) -> dict[tuple[str, frozenset], float]:
    async with client.session.get(client.base + "/metrics") as response:
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_every_ingest_answer_is_counted_by_route_and_status(ingest):
    before = await scrape(ingest)
    for _ in range(3):
        status, _, _ = await ingest.call("GET", "/no/such/path")
        assert status == 404
    status, _, _ = await ingest.call("POST", "/v1/tenants", token="wrong", json={"name": "x"})
    assert status == 401
    after = await scrape(ingest)
    name = "hookyard_ingest_http_responses_total"
    assert (
        value(after, name, method="GET", route="other", status="404")
        - value(before, name, method="GET", route="other", status="404")
        == 3
    )
    assert (
        value(after, name, method="POST", route="/v1/tenants", status="401")
        - value(before, name, method="POST", route="/v1/tenants", status="401")
        == 1
    )


async def test_a_scrape_refreshes_the_brokers_state_without_a_readiness_check(ingest):
    metrics.DEPENDENCY_UP.labels("broker").set(0)  # as if the last readiness check had failed
    samples = await scrape(ingest)
    assert value(samples, "hookyard_dependency_up", dependency="broker") == 1


async def test_the_retrier_reports_how_late_due_retries_are(settings, platform):
    key = await platform.tenant("late")
    status, endpoint, _ = await platform.call("POST", "/v1/endpoints", token=key, json={"url": "http://127.0.0.1:9/"})
    assert status == 201
    status, tenants, _ = await platform.call("GET", "/v1/tenants", token="test-admin-token")
    tenant_id = next(t["id"] for t in tenants["data"] if t["name"] == "late")
    count_before, sum_before = lateness()
    event = Event(tenant_id=tenant_id, event_type="t.late", payload={})
    task = DeliveryTask(
        message_id="msg_late",
        endpoint_id=endpoint["id"],
        event=event,
        attempt=2,
        due_at=utcnow() - timedelta(seconds=30),  # came due half a minute ago
        first_attempt_at=utcnow() - timedelta(seconds=40),
    )
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        await broker.publish(
            task.to_bytes(), exchange="", routing_key=topology.RETRY_DUE_QUEUE, message_id=task.message_id
        )
    finally:
        await broker.close()
    for _ in range(200):
        if lateness()[0] > count_before:
            break
        await asyncio.sleep(0.05)
    count, total = lateness()
    assert count == count_before + 1 and total - sum_before >= 30


def lateness() -> tuple[float, float]:
    """The retrier's lateness histogram (it runs in this process): observations and their sum."""
    import hookyard_retrier.main  # noqa: F401  (registers the metric)

    count = REGISTRY.get_sample_value("hookyard_retry_lateness_seconds_count") or 0.0
    return count, REGISTRY.get_sample_value("hookyard_retry_lateness_seconds_sum") or 0.0
