"""SIGKILL the dispatcher mid-stream: after a restart every event reached every endpoint."""

import asyncio
import json
import signal

import pytest

from helpers import start_service
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import Event

EVENTS = 2_000


@pytest.mark.slow
async def test_every_event_reaches_both_endpoints_despite_a_sigkill(settings, start_ingest, receiver, tmp_path):
    settings = settings.model_copy(update={"delivery_allowed_cidrs": ("127.0.0.0/8",), "endpoint_cache_seconds": 0.5})
    ingest = await start_ingest()
    key = await ingest.tenant()
    for path in ("/a", "/b"):
        status, _, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": receiver.url(path)})
        assert status == 201
    status, tenants, _ = await ingest.call("GET", "/v1/tenants", token="test-admin-token")
    tenant_id = tenants["data"][0]["id"]

    dispatcher = start_service("dispatcher", settings, tmp_path)
    retrier = start_service("retrier", settings, tmp_path)  # deferred deliveries come back through it
    broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
    try:
        for n in range(EVENTS):
            event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": n})
            await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")
        await receiver.wait_for("/a", 300, timeout=60)
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait()
        killed_at = len(receiver.requests["/a"])
        dispatcher = start_service("dispatcher", settings, tmp_path)

        def received(path):
            return {json.loads(r["body"])["data"]["n"] for r in receiver.requests.get(path, [])}

        for _ in range(1200):
            if len(received("/a")) == EVENTS and len(received("/b")) == EVENTS:
                break
            await asyncio.sleep(0.1)
        assert killed_at < EVENTS, "the kill came after the stream had ended"
        assert received("/a") == set(range(EVENTS)) and received("/b") == set(range(EVENTS))
    finally:
        await broker.close()
        for process in (dispatcher, retrier):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
