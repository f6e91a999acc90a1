"""Seed 001 (PyTake's outbound webhook manager), replayed verbatim against the real stack.

Its `configure` JSON goes to `POST /v1/endpoints/import`, its `send` JSON to `POST /v1/events`;
the receiver checks the seed's headers and signature, and the metrics answer its names. Only
the URLs point at a real local receiver instead of the seed's example hosts.
"""

import asyncio
import hashlib
import hmac
import logging

from helpers import attempts_of

#: The seed's `POST /api/v1/webhooks/configure` body.
CONFIGURE = {
    "tenant_id": "empresa-123",
    "base_url": "https://api.empresa.com/webhooks",
    "secret_key": "super-secret-key-123",
    "default_headers": {"X-API-Version": "v2", "User-Agent": "PyTake-Webhook/1.0"},
    "retry_policy": {
        "max_retries": 5,
        "initial_delay_seconds": 1,
        "backoff_multiplier": 2.0,
        "max_delay_seconds": 300,
        "jitter": True,
    },
    "timeout_seconds": 30,
    "enabled_events": ["user.*", "payment.completed", "order.*"],
    "active": True,
    "auth_config": {"auth_type": "Bearer", "token": "sk_live_123456789", "header_name": "Authorization"},
}
#: The seed's `POST /api/v1/webhooks/send` body.
SEND = {
    "tenant_id": "empresa-123",
    "event_type": "user.created",
    "payload": {
        "user_id": "usr_12345",
        "email": "joao@empresa.com",
        "name": "João Silva",
        "created_at": "2024-01-15T10:30:00Z",
    },
    "target_url": "https://webhook.especifico.com/endpoint",
    "custom_headers": {"X-Event-Priority": "high"},
    "severity": "Medium",
    "context": {"transaction_id": "txn_abc123", "source": "api_v1"},
}
SEED_METRICS = {
    "total_events",
    "successful_events",
    "failed_events",
    "pending_retries",
    "dead_letter_count",
    "avg_response_time_ms",
    "last_updated",
}
WORKER_LOG = "hookyard_common.delivery.worker"


async def import_config(ingest, key: str, **changes) -> tuple[int, dict]:
    status, body, _ = await ingest.call("POST", "/v1/endpoints/import", token=key, json={**CONFIGURE, **changes})
    return status, body


async def test_seed_001_configuration_and_sends_work_unchanged(platform, receiver, caplog):
    caplog.set_level(logging.INFO, logger=WORKER_LOG)
    key = await platform.tenant("empresa")
    status, imported = await import_config(platform, key, base_url=receiver.url("/webhooks"))
    assert status == 201, imported
    endpoint = imported["endpoint"]
    assert endpoint["url"] == receiver.url("/webhooks") and endpoint["signature_format"] == "legacy"
    assert endpoint["event_types"] == CONFIGURE["enabled_events"] and endpoint["auth"]["type"] == "bearer"
    assert endpoint["retry_policy"]["max_retries"] == 5 and endpoint["secret"] == CONFIGURE["secret_key"]
    assert set(imported["mapped"]) == set(CONFIGURE) - {"tenant_id"} and set(imported["ignored"]) == {"tenant_id"}

    # The seed's send, verbatim but for where target_url points.
    status, sent, _ = await platform.call(
        "POST", "/v1/events", token=key, json={**SEND, "target_url": receiver.url("/especifico")}
    )
    assert status == 202, sent
    [request] = await receiver.wait_for("/especifico", 1)
    headers, body = request["headers"], request["body"]
    # The seed's own check: 'sha256=' + hex HMAC-SHA256 of the body with the secret key.
    expected = "sha256=" + hmac.new(b"super-secret-key-123", body, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == expected
    assert headers["X-Event-Type"] == "user.created" and headers["X-Event-ID"] == sent["id"]
    assert headers["X-Tenant-ID"] == platform.tenant_ids[0] and headers["X-Timestamp"].isdigit()
    assert headers["Authorization"] == "Bearer sk_live_123456789" and headers["X-API-Version"] == "v2"
    assert headers["User-Agent"] == "PyTake-Webhook/1.0" and headers["X-Event-Priority"] == "high"
    assert b'"severity":"medium"' in body and b'"transaction_id":"txn_abc123"' in body
    assert "/webhooks" not in receiver.requests  # the override went once, to the target only

    # Without the override, the configured base URL; a failing one is retried and logged as a warning.
    receiver.behave("/flaky", [(500, 0), (200, 0)])
    plain = {k: v for k, v in SEND.items() if k != "target_url"}
    status, second, _ = await platform.call("POST", "/v1/events", token=key, json=plain)
    assert status == 202
    await receiver.wait_for("/webhooks", 1)
    status, third, _ = await platform.call(
        "POST", "/v1/events", token=key, json={**plain, "target_url": receiver.url("/flaky")}
    )
    assert status == 202
    await receiver.wait_for("/flaky", 2, timeout=20)
    await attempts_of(platform, key, third["id"], 2, timeout=10)

    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == WORKER_LOG and "webhook" in r.msg]
    for event_id, level, status_text in (
        (sent["id"], logging.INFO, "status 200"),
        (third["id"], logging.WARNING, "status 500"),
        (third["id"], logging.INFO, "status 200"),
    ):
        assert any(lv == level and event_id in msg and status_text in msg and "ms" in msg for lv, msg in lines), lines

    status, metrics, _ = await platform.call("GET", "/v1/metrics", token=key)
    assert status == 200 and set(metrics) >= SEED_METRICS, metrics
    assert metrics["total_events"] == metrics["total"]["messages"] == 3
    assert metrics["successful_events"] == 3 and metrics["failed_events"] == metrics["dead_letter_count"] == 0
    assert metrics["avg_response_time_ms"] is not None and metrics["pending_retries"] == 0


async def test_seed_001_auth_kinds_and_refusals(ingest):
    key = await ingest.tenant()
    status, basic = await import_config(ingest, key, auth_config={"auth_type": "Basic", "token": "user:pa:ss"})
    assert status == 201 and basic["endpoint"]["auth"] == {"type": "basic", "username": "user", "password": "***"}
    status, api_key = await import_config(
        ingest, key, auth_config={"auth_type": "ApiKey", "token": "api_key_1", "header_name": "X-API-Key"}
    )
    assert status == 201 and api_key["endpoint"]["auth"]["header_name"] == "X-API-Key"
    refused = [
        ({"auth_config": {"auth_type": "Basic", "token": "no-colon"}}, "auth_config.token"),
        ({"auth_config": {"auth_type": "Basic", "token": ":password"}}, "auth_config.token"),
        ({"auth_config": {"auth_type": "Digest", "token": "x"}}, "auth_config.auth_type"),
        (
            {"auth_config": {"auth_type": "ApiKey", "token": "x", "header_name": "Bad Header"}},
            "auth_config.header_name",
        ),
        ({"auth_config": {"auth_type": "Bearer", "token": "a\r\nInjected: 1"}}, "auth_config"),
        ({"secret_key": "short"}, "secret_key"),
        ({"enabled_events": ["user.**x"]}, "enabled_events"),
        ({"base_url": "ftp://example.com/"}, "base_url"),
        ({"default_headers": {"X-Webhook-Signature": "forged"}}, "default_headers"),
        ({"unknown": 1}, "unknown"),
    ]
    for changes, field in refused:
        status, answer = await import_config(ingest, key, **changes)
        assert status == 400 and answer["error"]["field"].startswith(field), (changes, answer)
    status, answer = await import_config(ingest, key, default_headers={"Host": "elsewhere"})
    assert answer["error"]["message"].startswith("default_headers"), answer  # the seed's name, not the endpoint's
    status, answer, _ = await ingest.call(
        "POST", "/v1/events", token=key, json={**SEND, "headers": {"X-A": "1"}, "target_url": "https://example.com/"}
    )
    assert status == 400, answer  # headers and custom_headers at once: which would win is not guessed


async def test_target_url_is_refused_inside_the_network_at_the_api_and_at_delivery(
    start_ingest, start_dispatcher, receiver
):
    # This ingest lets loopback through its early check; the dispatcher, as in production, does not.
    ingest = await start_ingest(delivery_allowed_cidrs=("127.0.0.0/8",))
    await start_dispatcher(endpoint_cache_seconds=0.2)
    key = await ingest.tenant()
    status, _ = await import_config(ingest, key, base_url="https://example.com/hooks")
    assert status == 201
    for url in ("http://10.0.0.1/x", "http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/", "http://[fd00::1]/"):
        status, answer, _ = await ingest.call("POST", "/v1/events", token=key, json={**SEND, "target_url": url})
        assert status == 400 and answer["error"]["code"] == "destination_not_allowed", (url, answer)
    status, sent, _ = await ingest.call(
        "POST", "/v1/events", token=key, json={**SEND, "target_url": receiver.url("/inside")}
    )
    assert status == 202, sent
    [attempt] = await attempts_of(ingest, key, sent["id"], 1, timeout=10)
    assert attempt["reason"] == "destination_not_allowed" and "/inside" not in receiver.requests


async def test_loopback_and_names_for_it_are_refused_by_default(ingest):
    key = await ingest.tenant()
    for url in ("http://127.0.0.1:9/", "http://localhost/x", "http://[::1]/", "http://[::ffff:127.0.0.1]/"):
        status, answer, _ = await ingest.call("POST", "/v1/events", token=key, json={**SEND, "target_url": url})
        assert status == 400 and answer["error"]["field"] == "target_url", (url, answer)


async def test_another_tenant_cannot_import_into_or_target_a_tenants_endpoint(platform, receiver):
    key_a, key_b = await platform.tenant("a"), await platform.tenant("b")
    status, a = await import_config(platform, key_a, base_url=receiver.url("/a"))
    assert status == 201
    # B names A's tenant id in the body: ignored, the endpoint is B's.
    status, b = await import_config(platform, key_b, base_url=receiver.url("/b"), tenant_id=platform.tenant_ids[0])
    assert status == 201
    status, listed, _ = await platform.call("GET", "/v1/endpoints", token=key_a)
    assert [e["id"] for e in listed["data"]] == [a["endpoint"]["id"]]
    # B's event aimed at A's endpoint, with a URL override: delivered to nobody, A's secret signs nothing.
    status, aimed, _ = await platform.call(
        "POST",
        "/v1/events",
        token=key_b,
        json={**SEND, "target_endpoint_id": a["endpoint"]["id"], "target_url": receiver.url("/stolen")},
    )
    assert status == 202
    status, own, _ = await platform.call("POST", "/v1/events", token=key_b, json={**SEND, "target_url": None})
    assert status == 202
    await receiver.wait_for("/b", 1)
    await asyncio.sleep(0.3)
    assert "/stolen" not in receiver.requests and "/a" not in receiver.requests
    status, attempts, _ = await platform.call("GET", f"/v1/events/{aimed['id']}/attempts", token=key_b)
    assert attempts["data"] == []
