"""Events delivered to endpoints: signed, routed, authenticated, retried, isolated, guarded."""

import asyncio
import hashlib
import hmac
import json
import time

from standardwebhooks.webhooks import Webhook

from helpers import endpoint, publish


async def test_delivery_is_signed_authenticated_and_carries_custom_headers(platform, receiver):
    key = await platform.tenant()
    ep = await endpoint(
        platform,
        key,
        receiver.url("/hooks"),
        auth={"type": "bearer", "token": "sk_live_123"},
        headers={"X-API-Version": "v2"},
    )
    event_id = await publish(
        platform,
        key,
        "user.created",
        {"user_id": "usr_1"},
        severity="Medium",
        context={"platform": "whatsapp"},
        headers={"X-Event-Priority": "high"},
    )
    [request] = await receiver.wait_for("/hooks", 1)
    headers = request["headers"]
    # The reference library is the referee.
    envelope = Webhook(ep["secret"]).verify(request["body"], headers)
    assert envelope["type"] == "user.created" and envelope["data"] == {"user_id": "usr_1"}
    assert envelope["severity"] == "medium" and envelope["context"] == {"platform": "whatsapp"}
    assert headers["Authorization"] == "Bearer sk_live_123"
    assert headers["X-API-Version"] == "v2" and headers["X-Event-Priority"] == "high"
    assert headers["webhook-id"].startswith("msg_")

    for _ in range(100):
        status, attempts, _ = await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key)
        if attempts["data"]:
            break
        await asyncio.sleep(0.05)
    [attempt] = attempts["data"]
    assert attempt["outcome"] == "success" and attempt["status"] == 200 and attempt["endpoint_id"] == ep["id"]
    assert "Authorization" not in attempt["request_headers"] and attempt["response_body"] == "answer 200"


async def test_legacy_format_matches_seed_001(platform, receiver):
    key = await platform.tenant()
    await endpoint(platform, key, receiver.url("/legacy"), secret="super-secret-key-123", signature_format="legacy")
    event_id = await publish(platform, key, "payment.completed", {"amount": 10})
    [request] = await receiver.wait_for("/legacy", 1)
    headers = request["headers"]
    expected = "sha256=" + hmac.new(b"super-secret-key-123", request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Webhook-Signature"], expected)
    assert headers["X-Event-Type"] == "payment.completed" and headers["X-Event-ID"] == event_id
    assert headers["X-Tenant-ID"].startswith("ten_") and abs(int(headers["X-Timestamp"]) - time.time()) < 60


async def test_wildcard_routing_and_target_override(platform, receiver):
    key = await platform.tenant()
    users = await endpoint(platform, key, receiver.url("/users"), event_types=["user.*"])
    await endpoint(platform, key, receiver.url("/failures"), event_types=["order.*.failed"])
    await endpoint(platform, key, receiver.url("/all"), event_types=["*"])
    await endpoint(platform, key, receiver.url("/off"), event_types=["*"], active=False)
    for event_type in ("user.created", "user.profile.updated", "order.payment.failed", "order.failed", "misc"):
        await publish(platform, key, event_type)
    await publish(platform, key, "order.payment.failed", target_endpoint_id=users["id"])
    await receiver.wait_for("/all", 5)
    await receiver.wait_for("/users", 3)
    await asyncio.sleep(0.5)
    seen = {path: sorted(json.loads(r["body"])["type"] for r in rs) for path, rs in receiver.requests.items()}
    assert seen["/users"] == ["order.payment.failed", "user.created", "user.profile.updated"]
    assert seen["/failures"] == ["order.payment.failed"]
    assert len(seen["/all"]) == 5 and "/off" not in seen


async def test_retries_keep_the_webhook_id_until_success(platform, receiver):
    key = await platform.tenant()
    url = receiver.behave("/flaky", [(500, 0), (503, 0), (200, 0)])
    # user.* only: the endpoint does not also receive the message.attempt.recovered announcement.
    await endpoint(platform, key, url, event_types=["user.*"], retry_policy={"schedule_seconds": [0.05, 0.05, 0.05]})
    event_id = await publish(platform, key, "user.created")
    requests = await receiver.wait_for("/flaky", 3)
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1
    for _ in range(100):
        status, attempts, _ = await platform.call("GET", f"/v1/messages/{event_id}/attempts", token=key)
        if len(attempts["data"]) == 3:
            break
        await asyncio.sleep(0.05)
    assert [(a["attempt"], a["reason"]) for a in attempts["data"]] == [
        (1, "http_500"),
        (2, "http_503"),
        (3, "http_200"),
    ]


async def test_410_disables_the_endpoint(platform, receiver):
    key = await platform.tenant()
    ep = await endpoint(platform, key, receiver.behave("/gone", [(410, 0)]))
    await publish(platform, key, "user.created")
    await receiver.wait_for("/gone", 1)
    for _ in range(100):
        status, shown, _ = await platform.call("GET", f"/v1/endpoints/{ep['id']}", token=key)
        if not shown["active"]:
            break
        await asyncio.sleep(0.05)
    assert shown["active"] is False and "410" in shown["disabled_reason"]


async def test_a_slow_endpoint_does_not_delay_a_healthy_one(platform, receiver):
    key = await platform.tenant()
    await endpoint(platform, key, receiver.behave("/slow", [(200, 10)]), timeout_seconds=15, max_in_flight=2)
    await endpoint(platform, key, receiver.url("/fast"))
    started = time.monotonic()
    for n in range(20):
        await publish(platform, key, "user.created", {"n": n})
    published = time.monotonic()
    fast = await receiver.wait_for("/fast", 20, timeout=5)
    assert max(r["at"] for r in fast) - published < 1.0, "the healthy endpoint waited for the slow one"
    # max_in_flight holds per worker: here one dispatcher and one retrier (deferred tasks come back through it).
    assert len(receiver.requests.get("/slow", [])) <= 2 * 2, "the slow endpoint got more than its max_in_flight"
    assert time.monotonic() - started < 10


async def test_internal_destinations_are_refused_by_default(start_ingest, start_dispatcher, receiver):
    ingest = await start_ingest(endpoint_cache_seconds=0.2)
    await start_dispatcher(endpoint_cache_seconds=0.2)  # production default: no allow-list
    key = await ingest.tenant()
    await endpoint(ingest, key, receiver.url("/internal"), retry_policy={"max_retries": 0})
    await endpoint(ingest, key, "http://169.254.169.254/latest/meta-data/", retry_policy={"max_retries": 0})
    event_id = await publish(ingest, key, "user.created")
    for _ in range(100):
        status, attempts, _ = await ingest.call("GET", f"/v1/messages/{event_id}/attempts", token=key)
        if len(attempts["data"]) == 2:
            break
        await asyncio.sleep(0.05)
    assert {a["reason"] for a in attempts["data"]} == {"destination_not_allowed"}
    assert "/internal" not in receiver.requests


async def test_tenant_metrics_count_outcomes_per_endpoint(platform, receiver):
    key = await platform.tenant()
    # Subscribed to user.* only: the message.attempt.exhausted announcements are not counted here.
    ok = await endpoint(platform, key, receiver.url("/ok"), event_types=["user.*"])
    bad = await endpoint(
        platform,
        key,
        receiver.behave("/bad", [(500, 0)]),
        event_types=["user.*"],
        retry_policy={"schedule_seconds": [0.05]},
    )
    for n in range(3):
        await publish(platform, key, "user.created", {"n": n})
    await receiver.wait_for("/ok", 3)
    await receiver.wait_for("/bad", 6)  # first attempts and one retry each, then dead
    for _ in range(100):  # attempt records are written behind the deliveries
        status, figures, _ = await platform.call("GET", "/v1/metrics", token=key)
        if figures["total"]["dead_letters"] == 3 and figures["total"]["attempts"] == 9:
            break
        await asyncio.sleep(0.05)
    assert figures["endpoints"][ok["id"]] | {"avg_response_ms": None} == {
        "messages": 3,
        "successful": 3,
        "failed": 0,
        "pending_retries": 0,
        "dead_letters": 0,
        "attempts": 3,
        "avg_response_ms": None,
    }
    assert figures["endpoints"][bad["id"]]["failed"] == 3 and figures["endpoints"][bad["id"]]["attempts"] == 6
    assert figures["total"]["messages"] == 6 and figures["total"]["successful"] == 3
    assert figures["total"]["avg_response_ms"] > 0
    status, body, _ = await platform.call("GET", "/v1/metrics", token=key, params={"hours": "-1"})
    assert (status, body["error"]["code"]) == (400, "invalid_window")


async def test_an_endpoint_receives_events_published_right_after_it_is_created(start_platform, receiver):
    """The dispatcher knew the tenant had no endpoint; a new one gets the very next event,
    however long ago the dispatcher last looked (endpoint changes are announced on the broker)."""
    platform = await start_platform(endpoint_cache_seconds=30.0)
    key = await platform.tenant()
    await publish(platform, key, "user.created")  # routed to nobody; the dispatcher caches that
    await asyncio.sleep(0.5)
    await endpoint(platform, key, receiver.url("/new"), event_types=["user.*"])
    await publish(platform, key, "user.updated")
    [request] = await receiver.wait_for("/new", 1, timeout=5)
    assert json.loads(request["body"])["type"] == "user.updated"
