"""Seed 004 (passive "webhook monitors") replayed verbatim against a real ingest and heartbeat.

Its documented requests, byte for byte: the create body with its camelCase
fields, `POST /webhooks/{token}` signed as its JavaScript signs (the hex
HMAC-SHA256 of `JSON.stringify(body)` in `X-Webhook-Signature`, made here by
Node itself), its curl pushes, `GET /webhooks/{token}/heartbeat` unsigned, and
the worker marking a silent monitor DOWN past interval + 60 s. Then what a
hostile sender or another tenant tries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime

import pytest

import monitor_helpers
from monitor_helpers import MovableClock, create_monitor, listed, monitor

heartbeats = monitor_helpers.heartbeats

SECRET = "seu-secret-compartilhado"
# "Criando um Monitor Webhook", as the seed documents it.
SEED_CREATE = {
    "name": "360Dialog - Status",
    "type": "webhook",
    "url": "https://360dialog.com",
    "heartbeatInterval": 300,
    "webhookSecret": SECRET,
    "alertsEnabled": True,
}
# The seed's JavaScript sender: the body it sends and the signature it puts beside it.
NODE_SENDER = """
const crypto = require('crypto')
const body = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const signature = crypto.createHmac('sha256', process.argv[1]).update(JSON.stringify(body)).digest('hex')
process.stdout.write(JSON.stringify({body: JSON.stringify(body), signature}))
"""


def seed_signed(body: str, secret: str = SECRET) -> tuple[str, str]:
    """(what the seed's sender POSTs, its X-Webhook-Signature), computed by Node as the seed's code does."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the seed's sender is JavaScript")
    out = subprocess.run([node, "-e", NODE_SENDER, secret], input=body.encode(), capture_output=True, check=True)
    made = json.loads(out.stdout)
    return made["body"], made["signature"]


@pytest.fixture
async def seed_world(start_ingest, heartbeats):
    clock = MovableClock()
    ingest = await start_ingest(clock=clock)
    [heartbeat] = await heartbeats(clock)
    return clock, ingest, await ingest.tenant("taco"), heartbeat


async def push(ingest, token: str, body: str | bytes, signature: str | None = None, path: str = ""):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Webhook-Signature"] = signature
    status, answer, _ = await ingest.call("POST", f"/webhooks/{token}{path}", data=body, headers=headers)
    return status, answer


async def test_the_seed_documents_requests_work_as_documented(seed_world):
    clock, ingest, key, heartbeat = seed_world
    status, created, _ = await ingest.call("POST", "/v1/monitors", token=key, json=SEED_CREATE)
    assert status == 201, created
    token = created["webhookToken"]
    assert len(token) == 64 and int(token, 16) >= 0 and token == created["token"]
    assert created["type"] == "webhook" and created["url"] == "https://360dialog.com"
    assert created["webhookUrl"] == f"{ingest.base}/webhooks/{token}"
    assert created["heartbeatUrl"] == f"{ingest.base}/webhooks/{token}/heartbeat"
    assert created["heartbeat_interval_seconds"] == 300 and created["grace_seconds"] == 60
    assert created["has_secret"] and created["alerts_enabled"]
    # As the seed behaved: its body-only signature, and unsigned heartbeats.
    assert created["legacy_signature"] and created["unsigned_heartbeats"]

    # 1. A status push, signed by the seed's JavaScript.
    pushed = {"status": "degraded", "message": "Descrição opcional do status"}
    body, signature = seed_signed(
        json.dumps({**pushed, "metadata": {"source": "360dialog-api", "region": "us-east-1"}})
    )
    status, answer = await push(ingest, token, body, signature)
    assert status == 200, answer
    assert answer["success"] is True
    assert answer["monitor"]["id"] == created["id"] and answer["monitor"]["name"] == "360Dialog - Status"
    assert answer["monitor"]["status"] == "degraded"
    # The seed checks the MAC of JSON.stringify(parsed body): a body sent with spaces verifies too.
    spaced = '{"status": "up",  "message": "Tudo funcionando"}'
    _, signature = seed_signed(spaced)
    status, answer = await push(ingest, token, spaced, signature)
    assert status == 200 and answer["monitor"]["status"] == "up", answer
    # ❌ 401 for a wrong signature, or none; ❌ 404 for a token no monitor has.
    status, answer = await push(ingest, token, spaced, seed_signed(spaced, "another-secret-entirely")[1])
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    status, answer = await push(ingest, token, spaced)
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    status, answer = await push(ingest, "a1b2c3d4e5f6" * 5 + "abcd", spaced, signature)
    assert (status, answer["error"]["code"]) == (404, "unknown_monitor")

    # 2. The heartbeat, unsigned, as the seed's setInterval sends it.
    status, beat, _ = await ingest.call("GET", f"/webhooks/{token}/heartbeat")
    assert status == 200, beat
    assert beat["success"] is True and beat["monitor"]["id"] == created["id"]
    stored = datetime.fromisoformat((await monitor(ingest, key, created["id"]))["last_ping_at"])
    assert beat["monitor"]["lastHeartbeat"] == stored.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # 3. The worker: no heartbeat within heartbeatInterval + 60 s marks it DOWN, not a second earlier
    # (Hookyard shows it `late` in the grace; it is not down, and not alerted as down).
    await heartbeat.settled()
    clock.advance(300 + 59)
    await heartbeat.scan()
    assert (await monitor(ingest, key, created["id"]))["state"] == "late"
    clock.advance(2)
    await heartbeat.scan()
    assert (await monitor(ingest, key, created["id"]))["state"] == "down"
    # Alerts, incidents and check records, as the seed lists them.
    incidents = await listed(ingest, key, f"/v1/monitors/{created['id']}/incidents", 2)
    assert {i["state"] for i in incidents} == {"open", "resolved"}
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 5)
    assert {c["outcome"] for c in checks} >= {"accepted", "invalid_signature"}


async def test_the_360dialog_integration_and_its_curl_tests(seed_world):
    _, ingest, key, _ = seed_world
    # "Integração com 360Dialog": created without a secret; pushed and pinged with the seed's curl lines.
    created = await create_monitor(
        ingest,
        key,
        name="360Dialog - WhatsApp Channel",
        type="webhook",
        url="https://waba.360dialog.io",
        heartbeatInterval=300,
        alertsEnabled=True,
    )
    token = created["webhookToken"]
    for body, state in (
        ('{"status": "up", "message": "Tudo funcionando"}', "up"),
        ('{"status": "down", "message": "Serviço fora do ar"}', "down"),
    ):
        status, answer = await push(ingest, token, body)
        assert (status, answer["monitor"]["status"]) == (200, state), answer
    assert (await monitor(ingest, key, created["id"]))["status_message"] == "Serviço fora do ar"
    status, beat, _ = await ingest.call("GET", f"/webhooks/{token}/heartbeat")
    assert status == 200 and beat["monitor"]["status"] == "up", beat


async def test_hostile_senders_and_another_tenant_get_nowhere(seed_world):
    _, ingest, key, _ = seed_world
    created = await create_monitor(ingest, key, **SEED_CREATE)
    token, other = created["webhookToken"], await ingest.tenant("intruder")
    # Unsigned heartbeats are bare heartbeats only: a status on the heartbeat URL must be signed.
    status, answer, _ = await ingest.call("GET", f"/webhooks/{token}/heartbeat", params={"status": "down"})
    assert (status, answer["error"]["code"]) == (401, "invalid_signature"), answer
    status, answer = await push(ingest, token, '{"status": "down"}')
    assert status == 401, answer
    # Malformed pushes: 4xx naming the problem, never a 5xx.
    body, signature = seed_signed('{"status": "sideways"}')
    status, answer = await push(ingest, token, body, signature)
    assert (status, answer["error"]["code"]) == (400, "invalid_status"), answer
    status, answer = await push(ingest, "not-a-token", "{}")
    assert (status, answer["error"]["code"]) == (404, "unknown_monitor")
    # Seed names and ours at once, or an active (http) monitor: refused, naming the field.
    for bad, field in (({"heartbeatInterval": 60, "heartbeat_interval_seconds": 60}, None), ({"type": "http"}, "type")):
        status, answer, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "x", **bad})
        assert status == 400, answer
        assert field is None or answer["error"]["field"] == field
    # Another tenant can neither read nor rewrite the monitor, nor sign its pings with its own secret.
    assert (await ingest.call("GET", f"/v1/monitors/{created['id']}", token=other))[0] == 404
    patch = {"webhookSecret": "the-intruders-own-secret"}
    assert (await ingest.call("PATCH", f"/v1/monitors/{created['id']}", token=other, json=patch))[0] == 404
    body, signature = seed_signed('{"status": "down"}', "the-intruders-own-secret")
    assert (await push(ingest, token, body, signature))[0] == 401
    assert (await monitor(ingest, key, created["id"]))["state"] == "new"
