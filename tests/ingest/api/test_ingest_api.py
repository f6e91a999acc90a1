"""The ingest's tenant and admin API over real HTTP, against the real broker and database."""

import json

from helpers import drain_queue
from hookyard_common.schemas import Event


async def test_tenants_need_the_admin_token(ingest):
    status, body, headers = await ingest.call("POST", "/v1/tenants", json={"name": "x"})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert headers["WWW-Authenticate"] == "Bearer"
    status, body, _ = await ingest.call("POST", "/v1/tenants", token="wrong", json={"name": "x"})
    assert status == 401
    status, body, _ = await ingest.call("POST", "/v1/tenants", token="test-admin-token", json={})
    assert status == 400 and body["error"]["problems"][0]["field"] == "name"
    api_key = await ingest.tenant("acme")
    assert api_key.startswith("hy_")
    status, body, _ = await ingest.call("GET", "/v1/tenants", token="test-admin-token")
    assert [t["name"] for t in body["data"]] == ["acme"]
    assert "api_key" not in body["data"][0] and "api_key_hash" not in body["data"][0]


async def test_admin_api_is_off_without_a_token(start_ingest):
    ingest = await start_ingest(admin_token="")
    status, body, _ = await ingest.call("POST", "/v1/tenants", token="anything", json={"name": "x"})
    assert status == 403 and body["error"]["code"] == "admin_disabled"


async def test_source_lifecycle_and_secrets_shown_once(ingest):
    key = await ingest.tenant()
    created = await ingest.source(key, "hmac")
    assert created["url"] == f"{ingest.base}/in/{created['id']}"
    assert created["secrets_generated"] is True and len(created["secrets"][0]) == 64
    assert created["options"]["signature_header"] == "X-Webhook-Signature"

    status, shown, _ = await ingest.call("GET", f"/v1/sources/{created['id']}", token=key)
    assert status == 200 and "secrets" not in shown and shown["secrets_count"] == 1
    assert created["secrets"][0] not in json.dumps(shown)

    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/sources/{created['id']}", token=key, json={"secrets": ["old", "new"], "name": "renamed"}
    )
    assert status == 200 and patched["secrets_count"] == 2 and patched["name"] == "renamed"

    other = await ingest.tenant("someone else")
    status, body, _ = await ingest.call("GET", f"/v1/sources/{created['id']}", token=other)
    assert status == 404 and body["error"]["code"] == "unknown_source"

    status, _, _ = await ingest.call("DELETE", f"/v1/sources/{created['id']}", token=key)
    assert status == 204
    status, _, _ = await ingest.call("GET", f"/v1/sources/{created['id']}", token=key)
    assert status == 404


async def test_source_validation_errors_name_the_problem(ingest):
    key = await ingest.tenant()
    cases = [
        ({"name": "s", "provider": "carrier-pigeon"}, "unknown_provider"),
        ({"name": "s", "provider": "stripe"}, "secret_required"),
        ({"name": "s", "provider": "hmac", "options": {"no_such_option": 1}}, "invalid_options"),
        ({"name": "s", "provider": "meta", "secrets": ["app-secret"]}, "invalid_options"),
        ({"name": "s", "provider": "hmac", "allowed_cidrs": ["not-a-network"]}, "invalid_request"),
        ({"name": "s", "provider": "hmac", "max_body_bytes": 10**9}, "invalid_field"),
        ({"provider": "hmac"}, "invalid_request"),
    ]
    for fields, code in cases:
        status, body, _ = await ingest.call("POST", "/v1/sources", token=key, json=fields)
        assert (status, body["error"]["code"]) == (400, code), (fields, body)
    status, body, _ = await ingest.call("POST", "/v1/sources", token=key, data=b"{not json")
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body, _ = await ingest.call("GET", "/v1/sources", token="hy_wrong")
    assert status == 401


async def test_sources_list_pages_with_a_cursor(ingest):
    key = await ingest.tenant()
    made = [(await ingest.source(key, "none", name=f"s{i}"))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body, _ = await ingest.call("GET", "/v1/sources", token=key, params=params)
        assert status == 200 and len(body["data"]) <= 2
        seen += [s["id"] for s in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # Newest first; sources made within one millisecond may come in either order, but pages
    # never repeat or skip one and follow the unpaged order exactly.
    status, body, _ = await ingest.call("GET", "/v1/sources", token=key, params={"limit": "100"})
    assert seen == [s["id"] for s in body["data"]] and sorted(seen) == sorted(made)
    created = [s["created_at"] for s in body["data"]]
    assert created == sorted(created, reverse=True)
    status, body, _ = await ingest.call("GET", "/v1/sources", token=key, params={"limit": "1000"})
    assert status == 400 and body["error"]["code"] == "invalid_limit"


async def test_tenant_events_reach_the_dispatch_queue(ingest, amqp_url):
    key = await ingest.tenant()
    status, body, _ = await ingest.call(
        "POST",
        "/v1/events",
        token=key,
        json={
            "event_type": "user.created",
            "payload": {"user_id": "usr_1"},
            "severity": "Medium",
            "context": {"transaction_id": "txn_abc123"},
            "headers": {"X-Event-Priority": "high"},
        },
    )
    assert status == 202, body
    [message] = await drain_queue(amqp_url, ingest.dispatch_queues(), expect=1)
    event = Event.from_bytes(message.body)
    assert event.id == body["id"] and event.event_type == "user.created"
    assert event.severity == "medium" and event.context == {"transaction_id": "txn_abc123"}
    assert message.routing_key == f"{event.tenant_id}.user.created"

    status, body, _ = await ingest.call("POST", "/v1/events", token=key, json={"event_type": "bad type", "payload": 1})
    assert status == 400 and body["error"]["problems"][0]["field"] == "event_type"
    # A tenant's event may not pose as one of Hookyard's operational events.
    posing = {"event_type": "endpoint.disabled", "payload": {}, "context": {"hookyard_operational": True}}
    status, body, _ = await ingest.call("POST", "/v1/events", token=key, json=posing)
    assert status == 400 and body["error"]["problems"][0]["field"] == "context", body


async def test_unknown_routes_answer_json(ingest):
    status, body, _ = await ingest.call("GET", "/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, headers = await ingest.call("PUT", "/v1/events")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
