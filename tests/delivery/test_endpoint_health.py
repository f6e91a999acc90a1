"""Endpoint health: a failing endpoint is paused and probed, warned about, and disabled."""

import asyncio
import json

from helpers import endpoint, eventually, publish
from hookyard_cli.devstack import free_port

EVENTS = 3


async def health_of(ingest, key, endpoint_id) -> dict:
    status, body, _ = await ingest.call("GET", f"/v1/endpoints/{endpoint_id}", token=key)
    assert status == 200, body
    return body


async def test_a_failing_endpoint_is_paused_probed_and_resumed(start_platform, receiver):
    platform = await start_platform(circuit_minimum_requests=3, circuit_pause_seconds=1.5)
    key = await platform.tenant()
    url = receiver.behave("/flaky", [(500, 0)])
    ep = await endpoint(
        platform, key, url, event_types=["order.*"], retry_policy={"schedule_seconds": [0.1] * 40, "jitter": False}
    )
    for n in range(5):
        await publish(platform, key, "order.created", {"n": n})

    async def paused():
        shown = await health_of(platform, key, ep["id"])
        return shown if shown["health"]["paused_until"] else None

    shown = await eventually(paused, timeout=10, what="the pause")
    assert shown["health"]["failing_since"] is not None and shown["active"] is True

    # While paused, retries wait on the broker instead of hammering the endpoint: once the
    # replicas' endpoint caches have caught up, no attempt goes out for 0.8 s (retries come every 0.1 s).
    async def quiet() -> bool:
        before = len(receiver.requests["/flaky"])
        await asyncio.sleep(0.8)
        return len(receiver.requests["/flaky"]) == before

    await eventually(quiet, timeout=5, interval=0, what="no attempt while paused")

    # The endpoint recovers: once the pause is over one delivery probes it, then the rest follow.
    receiver.behave("/flaky", [(200, 0)])
    recovered_from = len(receiver.requests["/flaky"])

    async def all_delivered():
        after = receiver.requests["/flaky"][recovered_from:]
        return len({json.loads(r["body"])["data"]["n"] for r in after}) == 5

    await eventually(all_delivered, timeout=15, what="every event after the recovery")
    shown = await health_of(platform, key, ep["id"])
    assert shown["health"]["paused_until"] is None and shown["health"]["failing_since"] is None
    status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
    assert dead["data"] == []


async def test_failing_warnings_then_disabled_once_each_across_replicas(
    start_platform, start_dispatcher, start_consumer, receiver
):
    """Two dispatchers and two retriers see the same failures; each warning and the disabling
    are announced once (docs/delivery.md: "once however many replicas see the failures")."""
    from hookyard_retrier.main import setup as retrier_setup

    fast = {"endpoint_disable_after_seconds": 1.5, "circuit_minimum_requests": 1000}
    platform = await start_platform(**fast)
    same = {**platform.settings.model_dump(), **fast}
    await start_dispatcher(**{**same, "dispatcher_port": free_port()})
    await start_consumer("retrier", retrier_setup, **{**same, "retrier_port": free_port()})
    key = await platform.tenant()
    failing = await endpoint(
        platform,
        key,
        receiver.behave("/down", [(503, 0)]),
        event_types=["order.*"],
        retry_policy={"schedule_seconds": [0.04] * 50, "jitter": False},
    )
    await endpoint(platform, key, receiver.url("/ops"), event_types=["endpoint.*"])
    for n in range(EVENTS):  # so both dispatchers take first attempts, and both retriers retries
        await publish(platform, key, "order.created", {"n": n})
    requests = await receiver.wait_for("/ops", 4, timeout=15)
    await asyncio.sleep(0.5)  # nothing more must come
    events = [json.loads(r["body"]) for r in receiver.requests["/ops"]]
    assert [e["type"] for e in events] == ["endpoint.failing"] * 3 + ["endpoint.disabled"], events
    assert [e["data"]["share_of_threshold"] for e in events[:3]] == [0.5, 0.75, 0.9]
    assert all(e["data"]["endpoint_id"] == failing["id"] for e in events)
    assert "failing continuously" in events[3]["data"]["reason"]
    assert len(requests) == 4

    shown = await health_of(platform, key, failing["id"])
    assert shown["active"] is False and "failing continuously" in shown["disabled_reason"]
    # The messages still in flight are kept as dead letters, to replay once the endpoint is fixed.
    status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
    assert [d["reason"] for d in dead["data"]] == ["endpoint_disabled"] * EVENTS
    # The failing endpoint never hears bad news about itself.
    assert all(json.loads(r["body"])["type"] == "order.created" for r in receiver.requests["/down"])

    # Re-enabling starts afresh.
    status, body, _ = await platform.call("PATCH", f"/v1/endpoints/{failing['id']}", token=key, json={"active": True})
    assert status == 200 and body["disabled_reason"] is None
    assert body["health"] == {
        "failing_since": None,
        "warned": 0.0,
        "paused_until": None,
        "pause_seconds": 0.0,
        "probe_until": None,
    }


async def updates_of(store, collection: str) -> int:
    """The database's own count of update commands on `collection` (the `top` admin command)."""
    top = await store.client.admin.command("top")
    return top["totals"].get(f"{store.db.name}.{collection}", {}).get("update", {}).get("count", 0)


async def test_a_healthy_endpoint_costs_no_database_write(platform, receiver, settings):
    """docs/delivery.md: "a healthy endpoint costs no database write": its window is kept in memory."""
    from hookyard_common.delivery.endpoint_cache import COLLECTION
    from hookyard_common.store.client import Store

    key = await platform.tenant()
    url = receiver.behave("/fine", [(200, 0)])
    await endpoint(platform, key, url, event_types=["order.*"])
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        before = await updates_of(store, COLLECTION)
        for n in range(30):
            await publish(platform, key, "order.created", {"n": n})
        await receiver.wait_for("/fine", 30)
        assert await updates_of(store, COLLECTION) == before, "a healthy endpoint's deliveries wrote to it"
        # The count is real: one failure (the start of a failing run) is written at once.
        receiver.behave("/fine", [(500, 0), (200, 0)])
        await publish(platform, key, "order.created", {"n": 30})
        await eventually(lambda: len(receiver.requests["/fine"]) >= 32, timeout=10, what="the failure and its retry")
        assert await updates_of(store, COLLECTION) > before
    finally:
        await store.close()


def pauses_so_far() -> float:
    from hookyard_common.delivery.health import HEALTH_CHANGES

    return HEALTH_CHANGES.labels("paused")._value.get()


async def test_a_flaky_endpoint_is_not_paused(platform, receiver):
    """Five failures in a row, five successes, and again: half its requests fail, it keeps being served.

    Events go one at a time and without retries, so the dispatcher sees the outcomes in that order
    (the rule this replaces, five failures in a row, paused it at the fifth)."""
    key = await platform.tenant()
    plan = ([(500, 0)] * 5 + [(200, 0)] * 5) * 4 + [(200, 0)]
    await endpoint(
        platform, key, receiver.behave("/flaky", plan), event_types=["order.*"], retry_policy={"max_retries": 0}
    )
    before = pauses_so_far()
    for n in range(40):
        await publish(platform, key, "order.created", {"n": n})
        await receiver.wait_for("/flaky", n + 1)
    assert pauses_so_far() == before, "a flaky endpoint was paused"


async def test_a_failing_endpoint_is_paused_once_the_window_holds_enough_attempts(start_platform, receiver):
    platform = await start_platform(circuit_minimum_requests=6, circuit_pause_seconds=30)
    key = await platform.tenant()
    ep = await endpoint(
        platform,
        key,
        receiver.behave("/down", [(500, 0)]),
        event_types=["order.*"],
        retry_policy={"schedule_seconds": [0.05] * 20, "jitter": False},
    )
    await publish(platform, key, "order.created")

    async def paused():
        shown = await health_of(platform, key, ep["id"])
        return shown if shown["health"]["paused_until"] else None

    await eventually(paused, timeout=10, what="the pause")
    await asyncio.sleep(0.5)
    # One first attempt (the dispatcher's window) and six retries (the retrier's): the sixth
    # failure one replica saw filled its window to the minimum volume, and nothing went out after.
    assert len(receiver.requests["/down"]) == 7
