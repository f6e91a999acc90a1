"""Retries on the broker's tiers with a compressed schedule, dead letters, and their replay."""

import asyncio
import json
import time
from email.utils import formatdate

from prometheus_client import REGISTRY

from helpers import endpoint, publish
from hookyard_cli.devstack import free_port


async def dead_letters_once(platform, key, count: int) -> list[dict]:
    """The tenant's dead letters, once there are `count` of them (or after 5 s)."""
    for _ in range(100):
        status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
        if len(dead["data"]) == count:
            break
        await asyncio.sleep(0.05)
    return dead["data"]


def gaps(requests) -> list[float]:
    times = [r["at"] for r in requests]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def test_attempts_follow_the_schedule_within_jitter(platform, receiver):
    key = await platform.tenant()
    url = receiver.behave("/down", [(500, 0)])
    await endpoint(
        platform, key, url, event_types=["user.*"], retry_policy={"schedule_seconds": [0.3, 0.8], "jitter": True}
    )
    await publish(platform, key, "user.created")
    requests = await receiver.wait_for("/down", 3, timeout=10)
    first, second = gaps(requests)
    # ±20 % jitter, then up to one short tier (50 ms) and processing of slack.
    assert 0.3 * 0.8 - 0.02 <= first <= 0.3 * 1.2 + 0.25, first
    assert 0.8 * 0.8 - 0.02 <= second <= 0.8 * 1.2 + 0.25, second
    await asyncio.sleep(1.5)
    assert len(receiver.requests["/down"]) == 3, "attempted after the schedule ran out"


async def test_retry_after_moves_the_next_attempt(platform, receiver):
    key = await platform.tenant()
    url = receiver.behave("/busy", [(503, 0, {"Retry-After": "1"}), (200, 0)])
    await endpoint(platform, key, url, event_types=["user.*"], retry_policy={"schedule_seconds": [0.05]})
    await publish(platform, key, "user.created")
    requests = await receiver.wait_for("/busy", 2, timeout=10)
    assert gaps(requests)[0] >= 0.95


async def test_dead_letter_then_replay_delivers_once(start_platform, start_ingest, receiver):
    platform = await start_platform()
    # A second ingest replica on the same broker and database: the replay claims race across both.
    other = await start_ingest(**{**platform.settings.model_dump(), "ingest_port": free_port()})
    key = await platform.tenant()
    # The replayed delivery takes a second, so the dead letter is still there (replaying) for every loser.
    url = receiver.behave("/later", [(500, 0), (500, 0), (200, 1.0)])
    ep = await endpoint(platform, key, url, event_types=["order.*"], retry_policy={"schedule_seconds": [0.05]})
    await publish(platform, key, "order.created", {"n": 1})
    await receiver.wait_for("/later", 2)
    [letter] = await dead_letters_once(platform, key, 1)
    assert letter["endpoint_id"] == ep["id"] and letter["reason"] == "http_500" and letter["attempt_count"] == 2
    assert letter["can_retry"] is True
    # Seed 001's entry: the original event and every attempt.
    for _ in range(100):
        status, entry, _ = await platform.call("GET", f"/v1/dead-letters/{letter['id']}", token=key)
        if len(entry["attempts"]) == 2:
            break
        await asyncio.sleep(0.05)
    assert status == 200 and entry["event"]["payload"] == {"n": 1} and entry["event"]["event_type"] == "order.created"
    assert [(a["attempt"], a["status"]) for a in entry["attempts"]] == [(1, 500), (2, 500)]

    # Two clicks on each replica at once: exactly one claim wins, the others are told it is in flight.
    replay = f"/v1/dead-letters/{letter['id']}/retry"
    answers = await asyncio.gather(*(replica.call("POST", replay, token=key) for replica in (platform, other) * 2))
    outcomes = sorted((status, body.get("error", {}).get("code")) for status, body, _ in answers)
    assert outcomes == [(202, None)] + [(409, "already_replaying")] * 3, outcomes
    requests = await receiver.wait_for("/later", 3)
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1
    assert await dead_letters_once(platform, key, 0) == []
    await asyncio.sleep(0.5)  # a second replay would be published beside the first: it has had its time
    assert len(receiver.requests["/later"]) == 3


async def test_bulk_replay_reports_how_many_were_requeued(platform, receiver):
    key = await platform.tenant()
    url = receiver.behave("/bulk", [(500, 0), (500, 0), (500, 0), (200, 0)])
    await endpoint(platform, key, url, event_types=["order.*"], retry_policy={"max_retries": 0})
    for n in range(3):
        await publish(platform, key, "order.created", {"n": n})
    await dead_letters_once(platform, key, 3)
    window = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    status, body, _ = await platform.call("POST", "/v1/dead-letters/replay", token=key, json=window)
    assert (status, body["requeued"]) == (202, 3) and body["replay_id"].startswith("rpl_")
    status, body, _ = await platform.call("POST", "/v1/dead-letters/replay", token=key, json=window)
    assert body["requeued"] == 0, "messages in flight were queued a second time"
    await receiver.wait_for("/bulk", 6)
    status, body, _ = await platform.call("POST", "/v1/dead-letters/replay", token=key, json={"since": "bad"})
    assert status == 400


async def test_operational_events_reach_the_tenants_other_endpoints(platform, receiver):
    key = await platform.tenant()
    flaky = await endpoint(
        platform,
        key,
        receiver.behave("/flaky", [(500, 0), (200, 0)]),
        event_types=["order.*", "message.attempt.*"],
        retry_policy={"schedule_seconds": [0.05]},
    )
    dead = await endpoint(
        platform,
        key,
        receiver.behave("/dead", [(500, 0)]),
        event_types=["order.*", "message.attempt.*"],
        retry_policy={"max_retries": 0},
    )
    gone = await endpoint(platform, key, receiver.behave("/gone", [(410, 0)]), event_types=["order.*"])
    await endpoint(
        platform,
        key,
        receiver.url("/ops"),
        event_types=["message.attempt.recovered", "message.attempt.exhausted", "endpoint.disabled"],
    )
    await publish(platform, key, "order.created")
    await receiver.wait_for("/ops", 3)
    await asyncio.sleep(0.5)
    seen = {}
    for request in receiver.requests["/ops"]:
        body = json.loads(request["body"])
        seen[body["type"]] = body["data"]
    assert seen["message.attempt.recovered"]["endpoint_id"] == flaky["id"]
    assert seen["message.attempt.recovered"]["attempt"] == 2
    assert seen["message.attempt.exhausted"]["endpoint_id"] == dead["id"]
    assert seen["message.attempt.exhausted"]["reason"] == "http_500"
    assert seen["endpoint.disabled"]["endpoint_id"] == gone["id"]
    assert len(receiver.requests["/ops"]) == 3
    # The endpoint that recovered hears of it too; bad news never goes to the endpoint it is about.
    flaky_types = [json.loads(r["body"])["type"] for r in receiver.requests["/flaky"]]
    assert sorted(flaky_types) == [
        "message.attempt.exhausted",
        "message.attempt.recovered",
        "order.created",
        "order.created",
    ]
    dead_types = [json.loads(r["body"])["type"] for r in receiver.requests["/dead"]]
    assert "message.attempt.exhausted" not in dead_types


async def test_a_replay_claimed_by_a_crashed_replica_is_taken_over(start_platform, receiver, settings):
    """The claim is written, then the replica dies before publishing: the record would sit in
    `replaying` for ever. Its lease (three publish timeouts: 1.5 s here) runs out and the
    retrier's sweep sends it."""
    from datetime import timedelta

    from hookyard_common.delivery import dead_letters
    from hookyard_common.schemas import utcnow
    from hookyard_common.store.client import Store

    platform = await start_platform(publish_timeout_seconds=0.5)
    key = await platform.tenant()
    url = receiver.behave("/stuck", [(500, 0), (200, 0)])
    await endpoint(platform, key, url, event_types=["order.*"], retry_policy={"max_retries": 0})
    await publish(platform, key, "order.created")
    [letter] = await dead_letters_once(platform, key, 1)
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        record = await store[dead_letters.COLLECTION].find_one({"_id": letter["id"]})
        lease = timedelta(seconds=3 * platform.settings.publish_timeout_seconds)
        claimed = await dead_letters.claim_for_replay(store, letter["id"], record["tenant_id"], utcnow(), lease)
        assert claimed is not None  # ... and the replica that claimed it is gone
    finally:
        await store.close()
    status, body, _ = await platform.call("POST", f"/v1/dead-letters/{letter['id']}/retry", token=key)
    assert status == 409, "a live claim was taken over"
    await receiver.wait_for("/stuck", 2, timeout=15)
    assert await dead_letters_once(platform, key, 0) == [], "the replay stayed stuck"


async def test_a_429_waits_the_penalty_and_retry_after_dates_and_caps_are_honoured(start_platform, receiver):
    """Retry-After as seconds is above; here as an HTTP date, past the cap, and a 429 without one."""
    platform = await start_platform(retry_min_penalty_seconds=1.0, retry_after_max_seconds=2.5)
    key = await platform.tenant()
    soon = formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s from now
    plans = {
        "/throttled": [(429, 0), (200, 0)],
        "/dated": [(503, 0, {"Retry-After": soon}), (200, 0)],
        "/greedy": [(503, 0, {"Retry-After": "3600"}), (200, 0)],
    }
    for path, plan in plans.items():
        policy = {"schedule_seconds": [0.05], "jitter": False}
        await endpoint(platform, key, receiver.behave(path, plan), event_types=["user.*"], retry_policy=policy)
    await publish(platform, key, "user.created")
    waited = {path: gaps(await receiver.wait_for(path, 2, timeout=10))[0] for path in plans}
    assert waited["/throttled"] >= 1.0, waited
    assert waited["/dated"] >= 0.8, waited
    assert 2.5 <= waited["/greedy"] < 4.0, waited


async def test_deleting_an_endpoint_drops_its_pending_retries(start_platform, receiver):
    """The retrier made the first retry, so it holds the endpoint in its cache, not reread for 30 s
    here: the ingest's change notice is what makes it forget the endpoint, and the next retry that
    comes due is dropped, not sent."""
    platform = await start_platform(endpoint_cache_seconds=30.0)
    key = await platform.tenant()
    policy = {"schedule_seconds": [0.05, 1.0], "jitter": False}
    ep = await endpoint(
        platform, key, receiver.behave("/doomed", [(500, 0)]), event_types=["user.*"], retry_policy=policy
    )
    await publish(platform, key, "user.created")
    await receiver.wait_for("/doomed", 2)
    dropped = REGISTRY.get_sample_value("hookyard_tasks_dropped_total", {"reason": "endpoint_deleted"}) or 0.0
    status, _, _ = await platform.call("DELETE", f"/v1/endpoints/{ep['id']}", token=key)
    assert status == 204
    for _ in range(60):
        now = REGISTRY.get_sample_value("hookyard_tasks_dropped_total", {"reason": "endpoint_deleted"}) or 0.0
        if now > dropped:
            break
        await asyncio.sleep(0.05)
    assert now == dropped + 1, "the pending retry did not come due and get dropped"
    await asyncio.sleep(0.3)
    assert len(receiver.requests["/doomed"]) == 2, "a retry was delivered to a deleted endpoint"
