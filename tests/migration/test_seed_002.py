"""Seed 002 (BerinIA's provider hub) replayed against the real ingest, dispatcher and broker.

Its three inbound routes as sources: Twilio SMS (signed by Twilio's own SDK),
Mailgun inbound email (form fields, Mailgun's HMAC) and WhatsApp (no
signature: checked by sender IP), each with the seed's required fields. The
hub's agents are endpoints: WhatsApp messages go to the one for their
`group` only (a payload filter), and a WhatsApp message sent twice with the
same `messageId` is delivered once (the source's dedup field). Then what
another tenant and hostile input try.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from helpers import endpoint

TWILIO_TOKEN = "twilio-auth-token-of-the-hub"
MAILGUN_KEY = "mailgun-signing-key-of-the-hub"
SMS_FIELDS = ["From", "To", "Body"]
EMAIL_FIELDS = ["sender", "recipient", "subject", "body-plain", "stripped-text", "message-id"]
WHATSAPP_FIELDS = ["source", "type", "group", "author", "content", "timestamp", "messageId"]


def whatsapp(group: str, message_id: str | None, **extra) -> dict:
    message = {
        "source": "whatsapp",
        "type": "text",
        "group": group,
        "author": "+33600000000",
        "content": f"message for {group}",
        "timestamp": "2025-05-08T10:00:00Z",
        **extra,
    }
    return message if message_id is None else {**message, "messageId": message_id}


async def post_json(ingest, url: str, body: dict, **headers) -> tuple[int, object]:
    async with ingest.session.post(url, json=body, headers=headers) as response:
        return response.status, await response.text()


async def post_form(ingest, url: str, fields: dict, headers: dict) -> tuple[int, str]:
    form = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    async with ingest.session.post(url, data=urlencode(fields), headers=form) as response:
        return response.status, await response.text()


async def test_the_hub_receives_verifies_deduplicates_and_routes_by_group(platform, receiver):
    ingest = platform
    key, other = await ingest.tenant("berinia"), await ingest.tenant("another")
    sms = await ingest.source(key, "twilio", secrets=[TWILIO_TOKEN], schema={"required": SMS_FIELDS})
    email = await ingest.source(key, "mailgun", secrets=[MAILGUN_KEY], schema={"required": EMAIL_FIELDS})
    wa = await ingest.source(
        key, "none", allowed_cidrs=["127.0.0.1/32"], dedup_path="messageId", schema={"required": WHATSAPP_FIELDS}
    )
    assert wa["dedup_path"] == "messageId"
    # The agents: ResponseListenerAgent for SMS and email; MetaAgent and AdminInterpreterAgent by WhatsApp group.
    await endpoint(ingest, key, receiver.url("/responses"), source_ids=[sms["id"], email["id"]])
    await endpoint(
        ingest, key, receiver.url("/meta"), source_ids=[wa["id"]], payload_filter={"path": "group", "equals": "meta"}
    )
    admin_filter = [{"path": "group", "in": ["admin", "ops"]}, {"path": "type", "equals": "text"}]
    await endpoint(ingest, key, receiver.url("/admin"), source_ids=[wa["id"]], payload_filter=admin_filter)
    # Another tenant, its own WhatsApp source and an endpoint for the same group: it sees only its own.
    theirs = await ingest.source(other, "none", dedup_path="messageId")
    await endpoint(ingest, other, receiver.url("/theirs"), payload_filter={"path": "group", "equals": "meta"})

    # POST /webhook/sms-response: From, To, Body, MessageSid, signed as Twilio signs.
    params = {"From": "+33611111111", "To": "+33622222222", "Body": "Oui, intéressé", "MessageSid": "SM" + "1" * 32}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(sms["url"], params)
    status, answer = await post_form(ingest, sms["url"], params, {"X-Twilio-Signature": signature})
    assert status == 200 and answer.startswith("<?xml"), answer  # TwiML, as Twilio expects
    status, answer = await post_form(ingest, sms["url"], params, {"X-Twilio-Signature": "forged" + signature[6:]})
    assert status == 401, answer
    # Champs manquants: 400 naming them.
    short = {"From": "+33611111111", "MessageSid": "SM" + "2" * 32}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(sms["url"], short)
    status, answer = await post_form(ingest, sms["url"], short, {"X-Twilio-Signature": signature})
    error = json.loads(answer)["error"]
    assert (status, error["code"], error["missing"]) == (400, "missing_fields", ["To", "Body"])

    # POST /webhook/email-response: Mailgun's inbound form, its HMAC over timestamp + token.
    stamp, token = str(int(time.time())), uuid.uuid4().hex
    mail = {name: f"the {name}" for name in EMAIL_FIELDS}
    signed = {"timestamp": stamp, "token": token}
    signed["signature"] = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    status, answer = await post_form(ingest, email["url"], {**mail, **signed}, {})
    assert status == 200, answer

    # POST /webhook/whatsapp: from an allowed address; the meta message twice, one for admin.
    for message in (whatsapp("meta", "wamid.1"), whatsapp("meta", "wamid.1"), whatsapp("admin", "wamid.2")):
        status, answer = await post_json(ingest, wa["url"], message)
        assert status == 200, answer
    status, answer = await post_json(ingest, wa["url"], {"source": "whatsapp", "group": "meta"})
    assert status == 400 and json.loads(answer)["error"]["missing"] == WHATSAPP_FIELDS[1:2] + WHATSAPP_FIELDS[3:]
    # The other tenant's same messageId is its own; without one, its Idempotency-Key decides as before.
    assert (await post_json(ingest, theirs["url"], whatsapp("meta", "wamid.1")))[0] == 200
    for _ in range(2):
        assert (await post_json(ingest, theirs["url"], whatsapp("meta", None), **{"Idempotency-Key": "k-1"}))[0] == 200

    await receiver.wait_for("/responses", 2)
    await receiver.wait_for("/meta", 1)
    await receiver.wait_for("/admin", 1)
    await receiver.wait_for("/theirs", 2)
    await asyncio.sleep(1.0)  # a duplicate or a misrouted copy would have arrived by now
    delivered = {
        path: [json.loads(r["body"]) for r in receiver.requests[path]] for path in ("/meta", "/admin", "/theirs")
    }
    assert [m["messageId"] for m in delivered["/meta"]] == ["wamid.1"]
    assert [m["messageId"] for m in delivered["/admin"]] == ["wamid.2"]
    assert [m.get("messageId") for m in delivered["/theirs"]] == ["wamid.1", None]
    assert len(receiver.requests["/responses"]) == 2

    # GET /webhook/logs: the recent activity, for the tenant's key only.
    status, log, _ = await ingest.call("GET", "/v1/received-events", token=key, params={"source_id": wa["id"]})
    assert status == 200 and {m["dedup_key"] for m in log["data"]} == {"wamid.1", "wamid.2"}, log
    assert (await ingest.call("GET", "/v1/received-events"))[0] == 401
    status, log, _ = await ingest.call("GET", "/v1/received-events", token=other, params={"source_id": wa["id"]})
    assert status == 200 and log["data"] == []


async def test_sender_ip_and_bad_filters_are_refused_by_name(ingest):
    key = await ingest.tenant("berinia")
    elsewhere = await ingest.source(key, "none", allowed_cidrs=["10.0.0.0/8"])
    status, answer = await post_json(ingest, elsewhere["url"], whatsapp("meta", "wamid.9"))
    assert status == 403 and json.loads(answer)["error"]["code"] == "sender_not_allowed"

    deep = ".".join(["a"] * 17)
    bad_filters = [
        {"path": "group"},  # no test
        {"path": "group", "equals": "meta", "exists": True},  # two tests
        {"path": "group", "equals": {"nested": "value"}},  # not a scalar
        {"path": "group", "in": list(range(101))},  # too many choices
        {"path": "group", "in": []},
        {"path": deep, "exists": True},  # too deep
        {"path": "a..b", "exists": True},
        {"path": "group", "matches": ".*"},  # no such test
        [{"path": "group", "exists": True}] * 11,  # too many conditions
        "group == meta",
    ]
    for bad in bad_filters:
        status, answer, _ = await ingest.call(
            "POST", "/v1/endpoints", token=key, json={"url": "https://example.com/hook", "payload_filter": bad}
        )
        assert status == 400, (bad, answer)
        assert answer["error"]["field"].startswith("payload_filter"), (bad, answer)
    for bad in ("a..b", "", ".".join(["x"] * 17), 7):
        status, answer, _ = await ingest.call(
            "POST", "/v1/sources", token=key, json={"name": "wa", "provider": "none", "dedup_path": bad}
        )
        assert (status, answer["error"]["field"]) == (400, "dedup_path"), (bad, answer)
    # A filter is one condition or a list; null clears it.
    made = await endpoint(ingest, key, "https://example.com/hook", payload_filter={"path": "group", "equals": "meta"})
    assert made["payload_filter"] == [{"path": "group", "equals": "meta"}]
    status, cleared, _ = await ingest.call(
        "PATCH", f"/v1/endpoints/{made['id']}", token=key, json={"payload_filter": None}
    )
    assert status == 200 and cleared["payload_filter"] is None
