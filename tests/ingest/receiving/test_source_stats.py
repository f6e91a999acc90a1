"""A source's last message and refused signatures (`GET /v1/sources/{id}/stats`), on a real ingest and dispatcher."""

import hashlib
import hmac
import json


async def post(ingest, source: dict, secret: str, body: bytes) -> int:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Webhook-Signature": signature, "Content-Type": "application/json"}
    status, _, _ = await ingest.call("POST", f"/in/{source['id']}", data=body, headers=headers)
    return status


async def test_refused_signatures_are_counted_and_the_last_message_shown(ingest, start_dispatcher):
    await start_dispatcher()
    key = await ingest.tenant()
    source = await ingest.source(key, "hmac", secrets=["the-right-secret"])
    status, stats, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/stats", token=key)
    assert status == 200 and stats == {
        "source_id": source["id"],
        "last_received_at": None,
        "signature_failures": 0,
        "last_signature_failure_at": None,
    }

    for n in range(2):
        assert await post(ingest, source, "a-wrong-secret", json.dumps({"type": "t", "n": n}).encode()) == 401
    assert await post(ingest, source, "the-right-secret", b'{"type": "t", "n": 9}') == 200
    [logged] = await ingest.wait_for_messages(key, 1)

    status, stats, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/stats", token=key)
    assert status == 200 and stats["signature_failures"] == 2, stats
    assert stats["last_received_at"] == logged["received_at"]
    assert stats["last_signature_failure_at"] is not None


async def test_another_tenants_source_stats_are_not_shown(ingest):
    owner = await ingest.tenant("owner")
    intruder = await ingest.tenant("intruder")
    source = await ingest.source(owner, "hmac", secrets=["the-right-secret"])
    status, body, _ = await ingest.call("GET", f"/v1/sources/{source['id']}/stats", token=intruder)
    assert status == 404 and body["error"]["code"] == "unknown_source"
