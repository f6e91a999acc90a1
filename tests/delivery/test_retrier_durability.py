"""SIGKILL the retrier while hundreds of retries are pending: after a restart none is lost."""

import asyncio
import json
import signal

import pytest

from helpers import start_service
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import Event

EVENTS = 300


@pytest.mark.slow
async def test_pending_retries_survive_a_sigkill_of_the_retrier(settings, start_ingest, receiver, tmp_path):
    settings = settings.model_copy(
        update={
            "delivery_allowed_cidrs": ("127.0.0.0/8",),
            "endpoint_cache_seconds": 0.5,
            "retry_tiers_ms": (50, 200, 1_000),
            "retry_min_penalty_seconds": 0.0,
            # Every first attempt fails on purpose: the endpoint must not be paused for it.
            "circuit_minimum_requests": 10 * EVENTS,
        }
    )
    ingest = await start_ingest()
    key = await ingest.tenant()
    # Every first attempt fails; the retry (after 0.3 s) succeeds.
    url = receiver.behave("/r", [(500, 0)] * EVENTS + [(200, 0)])
    status, _, _ = await ingest.call(
        "POST",
        "/v1/endpoints",
        token=key,
        json={"url": url, "event_types": ["order.*"], "retry_policy": {"schedule_seconds": [0.3, 0.3, 0.3]}},
    )
    assert status == 201
    status, tenants, _ = await ingest.call("GET", "/v1/tenants", token="test-admin-token")
    tenant_id = tenants["data"][0]["id"]

    dispatcher = start_service("dispatcher", settings, tmp_path)
    retrier = start_service("retrier", settings, tmp_path)
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        for n in range(EVENTS):
            event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": n})
            await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")
        await receiver.wait_for("/r", EVENTS + 20, timeout=60)  # the first retries are under way
        retrier.send_signal(signal.SIGKILL)
        retrier.wait()
        await asyncio.sleep(1.0)  # more retries come due while no retrier runs
        retrier = start_service("retrier", settings, tmp_path)

        def delivered():
            return {
                json.loads(r["body"])["data"]["n"]
                for r in receiver.requests.get("/r", [])[EVENTS:]  # the answers after the 500s were 200s
            }

        for _ in range(600):
            if delivered() == set(range(EVENTS)):
                break
            await asyncio.sleep(0.1)
        assert delivered() == set(range(EVENTS)), f"{EVENTS - len(delivered())} retries lost"
    finally:
        await broker.close()
        for process in (dispatcher, retrier):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
