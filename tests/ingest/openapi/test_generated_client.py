"""A client nobody here wrote drives a tenant's whole journey: generated from docs/openapi.json.

`openapi-python-client` makes the package into a temporary directory at the
start of the module (about a second); every call below goes through it, and
the typed models it parses answers into are the referee: an answer that
does not fit the document fails to parse. The journey runs on the real
stack (ingest, dispatcher, retrier, a real receiving server): tenant →
source → a provider's webhook → endpoints → event → attempts → a failing
endpoint → dead letter → replay → monitor → ping → incident.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

from hookyard_common.schemas import utcnow

DOCUMENT = Path(__file__).parents[3] / "docs/openapi.json"
GENERATE = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def hookyard_client(tmp_path_factory) -> ModuleType:
    out = tmp_path_factory.mktemp("client")
    subprocess.run(
        [GENERATE, "generate", "--path", DOCUMENT, "--meta", "none", "--output-path", out / "hookyard_client"],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("hookyard_client")
    finally:
        sys.path.remove(str(out))


def api(name: str):
    return importlib.import_module(f"hookyard_client.api.{name}")


def model(name: str):
    return getattr(importlib.import_module("hookyard_client.models"), name)


async def until(call, done, what: str, timeout: float = 10.0):
    """`await call()` until `done(result)`; the last result."""
    for _ in range(int(timeout / 0.05)):
        result = await call()
        if done(result):
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {result}")


async def test_a_tenant_journey_through_the_generated_client(hookyard_client, platform, receiver):
    client = hookyard_client
    admin = client.AuthenticatedClient(base_url=platform.base, token=platform.settings.admin_token)
    public = client.Client(base_url=platform.base)

    tenant = await api("admin.post_v1_tenants").asyncio(client=admin, body=model("TenantCreate")(name="journey"))
    assert isinstance(tenant, model("TenantCreated")) and tenant.api_key.startswith("hy_")
    platform.tenant_ids.append(tenant.id)
    me = client.AuthenticatedClient(base_url=platform.base, token=tenant.api_key)

    # A source, and a provider's webhook into it, read back from the message log.
    source = await api("sources.post_v1_sources").asyncio(
        client=me, body=model("SourceCreate").from_dict({"name": "orders", "provider": "none"})
    )
    assert isinstance(source, model("SourceCreated")), source
    received = await api("receiving.post_in_source_id").asyncio(
        source.id, client=public, body=model("PostInSourceIdJsonBody").from_dict({"type": "order.placed"})
    )
    assert isinstance(received, model("Received")) and received.status == "accepted", received
    logged = await until(
        lambda: api("received_events.get_v1_received_events").asyncio(client=me, source_id=source.id),
        lambda page: len(page.data) == 1,
        "the message log",
    )
    assert logged.data[0].id == received.id

    # Two endpoints: one delivers, one fails every attempt.
    healthy, failing = receiver.behave("/ok", [(200, 0)]), receiver.behave("/down", [(500, 0)])
    endpoints = {}
    for url in (healthy, failing):
        created = await api("endpoints.post_v1_endpoints").asyncio(
            client=me,
            body=model("EndpointCreate").from_dict(
                {"url": url, "event_types": ["order.*"], "retry_policy": {"schedule_seconds": [0.05]}}
            ),
        )
        assert isinstance(created, model("EndpointCreated")), created
        endpoints[url] = created.id

    accepted = await api("events.post_v1_events").asyncio(
        client=me, body=model("EventCreate").from_dict({"event_type": "order.shipped", "payload": {"n": 1}})
    )
    assert isinstance(accepted, model("EventAccepted")), accepted
    attempts = await until(
        lambda: api("events.get_v1_events_event_id_attempts").asyncio(accepted.id, client=me),
        lambda listing: len(listing.data) == 3,  # one delivered, two failed (first try and one retry)
        "the attempts",
    )
    outcomes = sorted((a.endpoint_id == endpoints[healthy], a.status) for a in attempts.data)
    assert outcomes == [(False, 500), (False, 500), (True, 200)]

    dead = await until(
        lambda: api("dead_letters.get_v1_dead_letters").asyncio(client=me),
        lambda page: len(page.data) == 1,
        "the dead letter",
    )
    assert dead.data[0].endpoint_id == endpoints[failing] and dead.data[0].can_retry

    # The endpoint recovers; a replay of the window delivers the dead letter.
    receiver.behave("/down", [(200, 0)])
    now = utcnow()
    started = await api("dead_letters.post_v1_dead_letters_replay").asyncio(
        client=me,
        body=model("BulkReplay").from_dict(
            {"since": (now - timedelta(minutes=5)).isoformat(), "until": (now + timedelta(minutes=1)).isoformat()}
        ),
    )
    assert isinstance(started, model("ReplayStarted")) and started.requeued == 1, started
    progress = await until(
        lambda: api("dead_letters.get_v1_dead_letters_replays_replay_id").asyncio(started.replay_id, client=me),
        lambda p: p.done and p.delivered == 1,
        "the replay",
    )
    assert progress.failed_again == 0
    assert (
        receiver.requests["/down"][-1]["headers"]["webhook-id"]
        == receiver.requests["/down"][0]["headers"]["webhook-id"]
    )

    # A monitor, pinged down by its token URL, opens an incident.
    monitor = await api("monitors.post_v1_monitors").asyncio(
        client=me, body=model("MonitorCreate").from_dict({"name": "billing job", "heartbeat_interval_seconds": 300})
    )
    assert isinstance(monitor, model("Monitor")), monitor
    ping = await api("pings.get_ping_token_status").asyncio(monitor.token, "down", client=public)
    assert isinstance(ping, model("PingAccepted")) and ping.changed and ping.monitor.state == "down", ping
    # The incident is written behind the ping's answer (the monitor's outbox).
    incidents = await until(
        lambda: api("monitors.get_v1_monitors_monitor_id_incidents").asyncio(monitor.id, client=me),
        lambda listing: len(listing.data) >= 1,
        "the incident",
    )
    assert [(i.state, i.status) for i in incidents.data] == [("open", "down")]

    # Another tenant's key reads none of it.
    other = await api("admin.post_v1_tenants").asyncio(client=admin, body=model("TenantCreate")(name="other"))
    platform.tenant_ids.append(other.id)
    them = client.AuthenticatedClient(base_url=platform.base, token=other.api_key)
    refused = await api("monitors.get_v1_monitors_monitor_id_incidents").asyncio(monitor.id, client=them)
    assert isinstance(refused, model("ErrorBody")) and refused.error.code == "unknown_monitor"
