"""Monitors through the ingest: the tenant API and every way of pinging, over real HTTP."""

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson

from hookyard_common.monitors.history import FLIPS
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.store.client import Store
from hookyard_ingest.monitors.pings import PING_BODY_LIMIT
from monitor_helpers import EventTap, create_monitor, listed, monitor, ping

STATUSPAGE_MAPPING = {
    "status_field": "component.status",
    "values": {
        "operational": "up",
        "degraded_performance": "degraded",
        "partial_outage": "degraded",
        "major_outage": "down",
    },
    "message_field": "component.name",
}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_create_shows_a_256_bit_token_and_its_ping_url_and_never_the_secret(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, secret="a-shared-secret-123")
    assert created["state"] == "new"
    assert created["heartbeat_interval_seconds"] == 300 and created["grace_seconds"] == 60
    assert created["alerts_enabled"] is True and created["has_secret"] is True
    token = created["token"]
    assert len(token) == 64 and int(token, 16) >= 0  # 32 random bytes, hex
    assert created["ping_url"] == f"{ingest.base}/ping/{token}"
    assert "secret" not in created
    again = await monitor(ingest, key, created["id"])
    assert again["token"] == token and "secret" not in again

    other = await ingest.tenant("other")
    status, body, _ = await ingest.call("GET", f"/v1/monitors/{created['id']}", token=other)
    assert status == 404 and body["error"]["code"] == "unknown_monitor"


async def test_bad_monitor_fields_are_named(ingest):
    key = await ingest.tenant()
    cases = [
        ({}, "name"),
        ({"name": "x", "heartbeat_interval_seconds": 0}, "heartbeat_interval_seconds"),
        ({"name": "x", "grace_seconds": -1}, "grace_seconds"),
        ({"name": "x", "secret": "short"}, "secret"),
        ({"name": "x", "payload_mapping": {"status_field": "a", "values": {"x": "sideways"}}}, "payload_mapping"),
        ({"name": "x", "color": "red"}, "color"),
    ]
    for fields, named in cases:
        status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json=fields)
        assert status == 400 and body["error"]["code"] == "invalid_request", (fields, body)
        assert any(p["field"].startswith(named) for p in body["error"]["problems"]), (fields, body)


async def test_list_is_paginated_and_filters_by_state(ingest):
    key = await ingest.tenant()
    made = [await create_monitor(ingest, key, name=f"job {n}") for n in range(3)]
    status, page, _ = await ingest.call("GET", "/v1/monitors", token=key, params={"limit": "2"})
    assert status == 200 and len(page["data"]) == 2 and page["next_cursor"]
    status, rest, _ = await ingest.call(
        "GET", "/v1/monitors", token=key, params={"limit": "2", "cursor": page["next_cursor"]}
    )
    assert [m["id"] for m in page["data"] + rest["data"]] == [m["id"] for m in reversed(made)]
    assert rest["next_cursor"] is None
    assert (await ping(ingest, made[0]["token"]))[0] == 200
    status, up, _ = await ingest.call("GET", "/v1/monitors", token=key, params={"state": "up"})
    assert [m["id"] for m in up["data"]] == [made[0]["id"]]
    status, body, _ = await ingest.call("GET", "/v1/monitors", token=key, params={"state": "sideways"})
    assert status == 400 and body["error"]["code"] == "invalid_state"


async def test_every_way_of_pinging(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    token = created["token"]

    status, body = await ping(ingest, token)  # GET: heartbeat
    assert (
        status == 200 and body["ok"] and body["monitor"] == {"id": created["id"], "name": "backup job", "state": "up"}
    )
    assert body["changed"] is True
    async with ingest.session.head(f"{ingest.base}/ping/{token}") as response:  # HEAD: heartbeat, no body
        assert response.status == 200 and await response.read() == b""
    status, body = await ping(ingest, token, method="POST")  # POST, no body: heartbeat
    assert (status, body["monitor"]["state"], body["changed"]) == (200, "up", False)

    status, body = await ping(ingest, token, "/degraded", method="POST")
    assert body["monitor"]["state"] == "degraded" and body["changed"]
    status, body = await ping(ingest, token, params={"status": "down", "msg": "disk full"})
    assert body["monitor"]["state"] == "down"
    assert (await monitor(ingest, key, created["id"]))["status_message"] == "disk full"
    pushed = {"status": "degraded", "message": "slow replies", "metadata": {"region": "us-east-1"}}
    status, body = await ping(ingest, token, method="POST", json=pushed)
    assert (status, body["status"], body["monitor"]["state"]) == (200, "degraded", "degraded")
    status, body = await ping(ingest, token, "/up")
    assert body["monitor"]["state"] == "up"

    shown = await monitor(ingest, key, created["id"])
    assert shown["pings_received"] == 7 and shown["last_ping_at"] and shown["deadline"] and shown["late_at"]

    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 7)
    assert [c["method"] for c in checks] == ["GET", "POST", "GET", "POST", "POST", "HEAD", "GET"]  # newest first
    assert [c["source"] for c in checks] == ["path", "body", "query", "path", "heartbeat", "heartbeat", "heartbeat"]
    pushed_check = checks[1]
    assert pushed_check["metadata"] == {"region": "us-east-1"} and pushed_check["message"] == "slow replies"
    assert orjson.loads(pushed_check["body"]) == pushed and pushed_check["client_ip"] == "127.0.0.1"

    flips = await listed(ingest, key, f"/v1/monitors/{created['id']}/flips", 5)
    assert [(f["from"], f["to"]) for f in reversed(flips)] == [
        ("new", "up"),
        ("up", "degraded"),
        ("degraded", "down"),
        ("down", "degraded"),
        ("degraded", "up"),
    ]


async def test_bad_pings_get_clear_errors(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    token = created["token"]
    status, body = await ping(ingest, "f" * 64)
    assert status == 404 and body["error"]["code"] == "unknown_monitor"
    status, body = await ping(ingest, "not-a-token")
    assert status == 404 and body["error"]["code"] == "unknown_monitor"
    status, body = await ping(ingest, token, "/sideways")
    assert (
        status == 400 and body["error"]["code"] == "invalid_status" and "up, down, degraded" in body["error"]["message"]
    )
    status, body = await ping(ingest, token, method="POST", data=b"{oops", headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body = await ping(
        ingest, token, method="POST", data=b"x" * (PING_BODY_LIMIT + 1), headers={"Content-Type": "text/plain"}
    )
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = await ping(
        ingest, token, method="POST", data=b"x" * PING_BODY_LIMIT, headers={"Content-Type": "text/plain"}
    )
    assert status == 200 and body["monitor"]["state"] == "up"
    status, body, _ = await ingest.call("PUT", f"/ping/{token}")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, metrics, _ = await ingest.call("GET", "/metrics")
    for outcome in ("accepted", "unknown_monitor", "invalid_status", "malformed_json", "body_too_large"):
        assert f'hookyard_monitor_pings_total{{outcome="{outcome}"}}' in metrics, outcome


async def test_endpoints_choose_a_payload_format(ingest):
    key = await ingest.tenant()
    status, body, _ = await ingest.call(
        "POST", "/v1/endpoints", token=key, json={"url": "https://example.com/h", "payload_format": "teams"}
    )
    assert status == 400 and body["error"]["problems"][0]["field"] == "payload_format"
    status, body, _ = await ingest.call(
        "POST", "/v1/endpoints", token=key, json={"url": "https://example.com/h", "payload_format": "discord"}
    )
    assert status == 201 and body["payload_format"] == "discord"
    status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": "https://example.com/h"})
    assert body["payload_format"] == "standard"


async def test_a_legacy_monitor_takes_body_only_signatures(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, secret="shared-secret-0001", legacy_signature=True)
    token = created["token"]
    body = b'{"status": "down", "message": "queue stuck"}'
    headers = {"Content-Type": "application/json"}
    status, answer = await ping(ingest, token, method="POST", data=body, headers=headers)
    assert status == 401 and answer["error"]["code"] == "invalid_signature" and "missing" in answer["error"]["message"]
    wrong = {**headers, "X-Webhook-Signature": sign("not-the-secret-xx", body)}
    status, answer = await ping(ingest, token, method="POST", data=body, headers=wrong)
    assert status == 401 and "does not match" in answer["error"]["message"]
    right = {**headers, "X-Webhook-Signature": sign("shared-secret-0001", body)}
    status, answer = await ping(ingest, token, method="POST", data=body, headers=right)
    assert status == 200 and answer["monitor"]["state"] == "down"
    # A GET heartbeat signs its empty body.
    status, _ = await ping(ingest, token)
    assert status == 401
    status, answer = await ping(
        ingest, token, headers={"X-Webhook-Signature": "sha256=" + sign("shared-secret-0001", b"")}
    )
    assert status == 200 and answer["monitor"]["state"] == "up"

    # GitHub's header carries the same scheme.
    github = {"X-Hub-Signature-256": "sha256=" + sign("shared-secret-0001", b'{"zen": "Keep it simple."}')}
    status, answer = await ping(ingest, token, method="POST", data=b'{"zen": "Keep it simple."}', headers=github)
    assert status == 200

    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 6)
    assert [c["outcome"] for c in checks] == [
        "accepted",
        "accepted",
        "invalid_signature",
        "accepted",
        "invalid_signature",
        "invalid_signature",
    ]

    # Removing the secret takes effect at once, though the settings were cached.
    status, _, _ = await ingest.call("PATCH", f"/v1/monitors/{created['id']}", token=key, json={"secret": None})
    assert status == 200
    assert (await ping(ingest, token))[0] == 200


async def test_token_regeneration_and_edits_reach_every_replica_at_once(start_ingest, settings):
    # Two replicas with a long settings cache: correctness must not depend on its expiry.
    first = await start_ingest(monitor_cache_seconds=3600)
    second_port = settings.heartbeat_port  # a free port the heartbeat does not use in this test
    second = await start_ingest(ingest_port=second_port, monitor_cache_seconds=3600)
    key = await first.tenant()
    created = await create_monitor(first, key, secret="first-secret-00001", legacy_signature=True)
    old = created["token"]
    signed = {"X-Webhook-Signature": sign("first-secret-00001", b"")}
    for replica in (first, second):  # both replicas now hold the monitor's settings
        assert (await ping(replica, old, headers=signed))[0] == 200

    status, regenerated, _ = await first.call("POST", f"/v1/monitors/{created['id']}/regenerate-token", token=key)
    assert status == 200 and regenerated["token"] != old and regenerated["ping_url"].endswith(regenerated["token"])
    for replica in (first, second):
        status, body = await ping(replica, old, headers=signed)
        assert status == 404 and body["error"]["code"] == "unknown_monitor"
        assert (await ping(replica, regenerated["token"], headers=signed))[0] == 200

    status, _, _ = await first.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"secret": "second-secret-0002"}
    )
    assert status == 200
    assert (await ping(second, regenerated["token"], headers=signed))[0] == 401
    new_signature = {"X-Webhook-Signature": sign("second-secret-0002", b"")}
    assert (await ping(second, regenerated["token"], headers=new_signature))[0] == 200

    status, _, _ = await first.call("DELETE", f"/v1/monitors/{created['id']}", token=key)
    assert status == 204
    assert (await ping(second, regenerated["token"], headers=new_signature))[0] == 404
    status, _, _ = await first.call("GET", f"/v1/monitors/{created['id']}", token=key)
    assert status == 404


async def test_floods_are_refused_per_monitor_and_per_ip(start_ingest):
    ingest = await start_ingest(ping_rate_limit_per_token=3, rate_limit_per_ip_total=5)
    key = await ingest.tenant()
    one, two = await create_monitor(ingest, key), await create_monitor(ingest, key)
    for _ in range(3):
        assert (await ping(ingest, one["token"]))[0] == 200
    status, body, headers = await ingest.call("GET", f"/ping/{one['token']}")
    assert status == 429 and body["error"]["code"] == "rate_limited" and "monitor limit 3" in body["error"]["message"]
    assert int(headers["Retry-After"]) >= 1
    assert (await ping(ingest, two["token"]))[0] == 200  # another monitor has its own allowance...
    status, body = await ping(ingest, two["token"])
    # ...but this IP has made its 5 requests to the edge (the refused one counted too).
    assert status == 429 and "ip total limit 5" in body["error"]["message"]
    status, body = await ping(ingest, "0" * 64)  # unknown tokens spend the failure budget, not the limits
    assert (status, body["error"]["code"]) == (404, "unknown_monitor")


async def test_pause_keeps_the_state_until_resumed(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    path = f"/v1/monitors/{created['id']}"
    await ping(ingest, created["token"], "/down")
    status, paused, _ = await ingest.call("POST", path + "/pause", token=key)
    assert status == 200 and paused["state"] == "paused" and paused["deadline"] is None
    assert paused["open_incident_id"] is None
    status, again, _ = await ingest.call("POST", path + "/pause", token=key)
    assert status == 200 and again["state"] == "paused"  # idempotent
    status, body = await ping(ingest, created["token"], "/up")
    assert status == 200 and body["monitor"]["state"] == "paused" and body["changed"] is False
    assert (await monitor(ingest, key, created["id"]))["pings_received"] == 2

    status, resumed, _ = await ingest.call("POST", path + "/resume", token=key)
    assert status == 200 and resumed["state"] == "new"
    status, body = await ping(ingest, created["token"])
    assert body["monitor"]["state"] == "up"

    # The pause resolves the incident behind its answer, after the outbox has opened it.
    incidents = await listed(ingest, key, path + "/incidents", 1, settled=lambda data: data[0]["state"] != "open")
    assert incidents[0]["state"] == "resolved" and incidents[0]["resolution"] == "paused"
    flips = await listed(ingest, key, path + "/flips", 4)
    assert [(f["from"], f["to"], f["reason"]) for f in reversed(flips)] == [
        ("new", "down", "ping"),
        ("down", "paused", "api"),
        ("paused", "new", "api"),
        ("new", "up", "ping"),
    ]
    checks = await listed(ingest, key, path + "/checks", 3)
    assert checks[1]["outcome"] == "paused" and checks[1]["state"] == "paused"


async def test_payload_mapping_drives_the_monitor_from_a_providers_own_json(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=None, payload_mapping=STATUSPAGE_MAPPING)
    assert created["payload_mapping"]["values"]["major_outage"] == "down"
    token = created["token"]

    def component(status: str) -> dict:  # a Statuspage component-update webhook, abridged
        return {
            "meta": {"unsubscribe": "..."},
            "component_update": {"new_status": status},
            "component": {"status": status, "name": "Checkout API"},
        }

    states = []
    for status in ("partial_outage", "major_outage", "under_maintenance", "operational"):
        code, body = await ping(ingest, token, method="POST", json=component(status))
        assert code == 200, body
        states.append(body["monitor"]["state"])
    assert states == ["degraded", "down", "down", "up"]  # an unmapped value keeps the state
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 4)
    assert [(c["outcome"], c["mapped_value"]) for c in checks] == [
        ("accepted", "operational"),
        ("unmapped", "under_maintenance"),
        ("accepted", "major_outage"),
        ("accepted", "partial_outage"),
    ]
    assert checks[-1]["message"] == "Checkout API"
    shown = await monitor(ingest, key, created["id"])
    assert shown["deadline"] is None  # push-only: no heartbeat expected

    # The mapping can be replaced, and removed (the standard body is read again).
    # docs/monitors.md's second example: GitHub Actions' workflow_run webhook.
    ci = {
        "status_field": "workflow_run.conclusion",
        "values": {
            "success": "up",
            "failure": "down",
            "timed_out": "down",
            "startup_failure": "down",
            "cancelled": "degraded",
        },
        "message_field": "workflow_run.html_url",
    }
    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"payload_mapping": ci}
    )
    assert status == 200 and patched["payload_mapping"]["status_field"] == "workflow_run.conclusion"
    run = {
        "action": "completed",
        "workflow_run": {"conclusion": "failure", "html_url": "https://github.com/acme/shop/actions/runs/1"},
    }
    code, body = await ping(ingest, token, method="POST", json=run)
    assert body["monitor"]["state"] == "down"
    assert (await monitor(ingest, key, created["id"]))[
        "status_message"
    ] == "https://github.com/acme/shop/actions/runs/1"
    started = {
        "action": "requested",
        "workflow_run": {"conclusion": None, "html_url": "https://github.com/acme/shop/actions/runs/2"},
    }
    code, body = await ping(ingest, token, method="POST", json=started)
    assert body["monitor"]["state"] == "down" and body["status"] is None
    status, _, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"payload_mapping": None}
    )
    code, body = await ping(ingest, token, method="POST", json={"status": "degraded"})
    assert body["monitor"]["state"] == "degraded"


async def test_state_changes_from_pings_make_one_flip_one_incident_and_one_alert_each(ingest, settings):
    key = await ingest.tenant()
    loud = await create_monitor(ingest, key, name="loud")
    quiet = await create_monitor(ingest, key, name="quiet", alerts_enabled=False)
    async with EventTap(settings.amqp_url) as tap:
        for created in (loud, quiet):
            for path in ("/up", "/degraded", "/degraded", "/down", "/up"):
                assert (await ping(ingest, created["token"], path))[0] == 200
        events = await tap.take(4)
    assert tap.of(loud["id"]) == ["monitor.up", "monitor.degraded", "monitor.down", "monitor.up"]
    assert tap.of(quiet["id"]) == []  # alerts off: still flips and incidents, no events
    down = next(e for e in events if e["event_type"] == "monitor.down")
    assert down["severity"] == "high" and down["tenant_id"].startswith("ten_")
    data = down["payload"]
    assert data["monitor_name"] == "loud" and data["status"] == "down" and data["previous_status"] == "degraded"
    assert data["reason"] == "ping" and data["incident_id"].startswith("inc_")

    for created in (loud, quiet):
        path = f"/v1/monitors/{created['id']}"
        assert len(await listed(ingest, key, path + "/flips", 4)) == 4
        [incident] = await listed(ingest, key, path + "/incidents", 1)
        assert incident["state"] == "resolved" and incident["worst_status"] == "down"
        assert incident["status"] == "down" and incident["resolution"] == "recovered"
        assert incident["duration_seconds"] >= 0
    assert (
        down["payload"]["incident_id"]
        == (await listed(ingest, key, f"/v1/monitors/{loud['id']}/incidents", 1))[0]["id"]
    )


async def test_stats_count_pings_and_uptime_from_flips(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    path = f"/v1/monitors/{created['id']}/stats"
    status, empty, _ = await ingest.call("GET", path, token=key)
    assert status == 200 and empty["pings_received"] == 0 and empty["uptime"]["24h"]["percent"] is None
    await ping(ingest, created["token"])
    await asyncio.sleep(0.3)
    await ping(ingest, created["token"], "/down")
    await asyncio.sleep(0.3)
    await ping(ingest, created["token"], "/up")
    await listed(ingest, key, f"/v1/monitors/{created['id']}/flips", 3)
    status, stats, _ = await ingest.call("GET", path, token=key)
    assert stats["pings_received"] == 3 and stats["last_ping_at"] and stats["incidents_30d"] == 1
    for window in ("24h", "7d", "30d"):
        figures = stats["uptime"][window]
        assert 0.25 <= figures["down_seconds"] <= 5, figures
        assert 0 < figures["percent"] < 100


async def test_checks_are_paginated_and_the_records_go_with_the_monitor(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    for n in range(5):
        await ping(ingest, created["token"], params={"msg": f"run {n}"})
    path = f"/v1/monitors/{created['id']}/checks"
    await listed(ingest, key, path, 5)
    status, page, _ = await ingest.call("GET", path, token=key, params={"limit": "3"})
    status, rest, _ = await ingest.call("GET", path, token=key, params={"limit": "3", "cursor": page["next_cursor"]})
    assert [c["message"] for c in page["data"] + rest["data"]] == [f"run {n}" for n in (4, 3, 2, 1, 0)]
    status, _, _ = await ingest.call("DELETE", f"/v1/monitors/{created['id']}", token=key)
    assert status == 204
    from hookyard_common.store.client import Store

    store = await Store.connect(ingest.settings.mongo_uri, ingest.settings.mongo_db)
    try:
        assert await store[COLLECTION].count_documents({"_id": created["id"]}) == 0
        assert await store["monitor_checks"].count_documents({"monitor_id": created["id"]}) == 0
        assert await store["monitor_flips"].count_documents({"monitor_id": created["id"]}) == 0
    finally:
        await store.close()


async def test_uptime_survives_its_flips_expiring(ingest):
    # A monitor up for two months: the flip that made it up is past its retention (deleted here as the TTL would).
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    await ping(ingest, created["token"])
    await listed(ingest, key, f"/v1/monitors/{created['id']}/flips", 1)
    store = await Store.connect(ingest.settings.mongo_uri, ingest.settings.mongo_db)
    try:
        months_ago = {"$set": {"created_at": datetime.now(UTC) - timedelta(days=60)}}
        await store[COLLECTION].update_one({"_id": created["id"]}, months_ago)
        assert (await store[FLIPS].delete_many({"monitor_id": created["id"]})).deleted_count == 1
    finally:
        await store.close()
    status, stats, _ = await ingest.call("GET", f"/v1/monitors/{created['id']}/stats", token=key)
    assert status == 200 and stats["uptime"]["30d"]["percent"] == 100.0, stats["uptime"]
    assert stats["uptime"]["30d"]["monitored_seconds"] >= 30 * 86_400 - 5
