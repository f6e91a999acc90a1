"""Provider webhooks into /in/{source_id}: each provider signed by its own SDK, and every refusal."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import githubkit.webhooks
import pytest
import stripe
from prometheus_client import REGISTRY
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from helpers import drain_queue
from hookyard_common.schemas import Event

SECRET = "s3cr3t-from-the-provider"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def stripe_case(url):
    body = json.dumps({"id": "evt_1Stripe", "type": "payment_intent.succeeded", "data": {"object": {}}})
    header = stripe.WebhookSignature.generate_signature_header(body, "whsec_stripe")
    return {"Stripe-Signature": header, "Content-Type": "application/json"}, body.encode()


def github_case(url):
    body = json.dumps({"action": "opened", "number": 7})
    return {
        "X-Hub-Signature-256": githubkit.webhooks.sign(SECRET, body, method="sha256"),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "Content-Type": "application/json",
    }, body.encode()


def twilio_case(url):
    params = {"MessageSid": "SM123", "From": "+15550001", "To": "+15550002", "Body": "hola"}
    signature = RequestValidator(SECRET).compute_signature(url, params)
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}, urlencode(
        params
    ).encode()


def slack_case(url):
    body = json.dumps({"type": "event_callback", "event_id": "Ev123", "event": {"type": "message", "text": "hi"}})
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Signature": signature,
        "X-Slack-Request-Timestamp": ts,
        "Content-Type": "application/json",
    }, body.encode()


def standard_case(url):
    body = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}})
    msg_id = "msg_" + uuid.uuid4().hex
    now = datetime.now(UTC)
    signature = Webhook(WHSEC).sign(msg_id, now, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }, body.encode()


def shopify_case(url):
    # Shopify's docs: base64(HMAC-SHA256(app secret, raw body)) in X-Shopify-Hmac-Sha256.
    body = json.dumps({"id": 820982911946154508, "email": "jon@example.com"}).encode()
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "Content-Type": "application/json",
    }, body


def mailgun_case(url):
    # Mailgun's docs: hex HMAC-SHA256(signing key, timestamp + token).
    ts, token = str(int(time.time())), uuid.uuid4().hex
    body = json.dumps(
        {
            "signature": {"timestamp": ts, "token": token, "signature": _hex(SECRET, (ts + token).encode())},
            "event-data": {"event": "delivered", "id": "CPgfbmQMTCKtHW6uIWtuVe"},
        }
    ).encode()
    return {"Content-Type": "application/json"}, body


def meta_case(url):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}).encode()
    return {"X-Hub-Signature-256": "sha256=" + _hex(SECRET, body), "Content-Type": "application/json"}, body


def hmac_case(url):
    body = json.dumps({"type": "reservation_update", "content": "confirmada", "id": "r-1"}).encode()
    return {"X-Webhook-Signature": _hex(SECRET, body), "Content-Type": "application/json"}, body


def none_case(url):
    return {"Content-Type": "application/json", "Idempotency-Key": "abc"}, b'{"type": "ping"}'


@dataclass(frozen=True)
class Case:
    """One provider's webhook, end to end: the source, the signed request, what is published."""

    fields: dict  # the source's fields besides its provider
    build: Callable[[str], tuple[dict, bytes]]  # the source URL -> (headers, body)
    event_type: str
    dedup_key: str | None  # None: the provider's id is random per request, not checked
    twiml: bool = False  # the provider reads back TwiML instead of the JSON receipt


CASES = {
    "stripe": Case({"secrets": ["whsec_stripe"]}, stripe_case, "payment_intent.succeeded", "evt_1Stripe"),
    "github": Case({"secrets": [SECRET]}, github_case, "pull_request.opened", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    "twilio": Case({"secrets": [SECRET]}, twilio_case, "twilio.message", "SM123", twiml=True),
    "slack": Case({"secrets": [SECRET]}, slack_case, "event_callback.message", "Ev123"),
    "standard_webhooks": Case({"secrets": [WHSEC]}, standard_case, "invoice.paid", None),
    "shopify": Case({"secrets": [SECRET]}, shopify_case, "orders.create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    "mailgun": Case({"secrets": [SECRET]}, mailgun_case, "mailgun.delivered", None),
    "meta": Case({"secrets": [SECRET], "options": {"verify_token": "vt"}}, meta_case, "meta.whatsapp", None),
    "hmac": Case({"secrets": [SECRET]}, hmac_case, "reservation_update", "r-1"),
    "none": Case({}, none_case, "ping", "abc"),
}


async def post(ingest, source, headers, body, path_suffix=""):
    return await ingest.call("POST", f"/in/{source['id']}{path_suffix}", headers=headers, data=body)


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_each_provider_signed_by_its_own_sdk_is_accepted(ingest, amqp_url, provider):
    case = CASES[provider]
    key = await ingest.tenant()
    source = await ingest.source(key, provider, **case.fields)
    headers, body = case.build(source["url"])
    status, answer, _ = await post(ingest, source, headers, body)
    assert status == 200, answer

    [message] = await drain_queue(amqp_url, ingest.dispatch_queues(), expect=1)
    event = Event.from_bytes(message.body)
    if case.twiml:
        assert answer.startswith("<?xml") and event.id.startswith("evt_")  # Twilio expects TwiML back
    else:
        assert event.id == answer["id"]
    assert event.event_type == case.event_type and event.source_id == source["id"]
    assert message.routing_key == f"{event.tenant_id}.{case.event_type}"
    assert event.inbound.raw_body == body and event.inbound.provider == provider
    if case.dedup_key is not None:
        assert event.inbound.dedup_key == case.dedup_key
    assert (event.inbound.signature_scheme == "none") is (provider == "none")


async def test_tampered_wrong_secret_and_missing_signature_are_refused(ingest):
    key = await ingest.tenant()
    source = await ingest.source(key, "github", secrets=[SECRET])
    headers, body = github_case(source["url"])
    status, answer, _ = await post(ingest, source, headers, body.replace(b"7", b"8"))
    assert status == 401 and answer["error"]["code"] == "invalid_signature"
    wrong = {**headers, "X-Hub-Signature-256": githubkit.webhooks.sign("other-secret", body.decode(), method="sha256")}
    status, _, _ = await post(ingest, source, wrong, body)
    assert status == 401
    del headers["X-Hub-Signature-256"]
    status, answer, _ = await post(ingest, source, headers, body)
    assert status == 401 and "X-Hub-Signature-256" in answer["error"]["message"]
    status, metrics, _ = await ingest.call("GET", "/metrics")
    assert 'hookyard_ingest_signature_failures_total{provider="github"}' in metrics


@pytest.mark.parametrize(("offset", "reason"), [(-301, "old"), (301, "future")])
async def test_stale_and_future_timestamps_are_refused(ingest, offset, reason):
    key = await ingest.tenant()
    source = await ingest.source(key, "stripe", secrets=["whsec_stripe"])
    body = json.dumps({"id": "evt_old", "type": "x.y"})
    header = stripe.WebhookSignature.generate_signature_header(body, "whsec_stripe", int(time.time()) + offset)
    status, answer, _ = await post(
        ingest, source, {"Stripe-Signature": header, "Content-Type": "application/json"}, body
    )
    assert status == 401 and reason in answer["error"]["message"], answer


async def test_secret_rotation_accepts_both_secrets(ingest):
    key = await ingest.tenant()
    source = await ingest.source(key, "hmac", secrets=["old-secret", "new-secret"])
    for secret in ("old-secret", "new-secret"):
        body = json.dumps({"type": "t", "n": secret}).encode()
        status, _, _ = await post(
            ingest, source, {"X-Webhook-Signature": _hex(secret, body), "Content-Type": "application/json"}, body
        )
        assert status == 200


async def test_a_replayed_delivery_is_answered_2xx_and_dropped_once_logged(ingest, start_dispatcher):
    await start_dispatcher()
    key = await ingest.tenant()
    source = await ingest.source(key, "github", secrets=[SECRET])
    headers, body = github_case(source["url"])

    def duplicates() -> float:
        return REGISTRY.get_sample_value("hookyard_inbound_duplicates_total", {"provider": "github"}) or 0

    before = duplicates()
    for _ in range(3):
        status, _, _ = await post(ingest, source, headers, body)
        assert status == 200
    [logged] = await ingest.wait_for_messages(key, 1)
    for _ in range(100):
        if duplicates() - before == 2:
            break
        await asyncio.sleep(0.05)
    assert duplicates() - before == 2
    status, page, _ = await ingest.call("GET", "/v1/messages", token=key)
    assert [m["id"] for m in page["data"]] == [logged["id"]]


async def test_edge_refusals_are_json_with_the_right_status(start_ingest):
    ingest = await start_ingest(max_body_bytes=1024)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    json_headers = {"Content-Type": "application/json"}

    status, body, _ = await ingest.call("POST", "/in/src_nope", headers=json_headers, data=b"{}")
    assert (status, body["error"]["code"]) == (404, "unknown_source")

    status, body, _ = await post(ingest, source, json_headers, b"{" + b" " * 2048 + b"}")
    assert (status, body["error"]["code"]) == (413, "body_too_large")

    async def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(8):
            yield b" " * 512

    status, body, _ = await post(ingest, source, json_headers, chunked())
    assert (status, body["error"]["code"]) == (413, "body_too_large")

    status, body, _ = await post(ingest, source, {"Content-Type": "application/xml"}, b"<a/>")
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")

    status, body, _ = await post(ingest, source, json_headers, b'{"broken": ')
    assert (status, body["error"]["code"]) == (400, "malformed_json")

    status, body, _ = await post(ingest, source, json_headers, b'{"bad utf8": "\xff"}')
    assert (status, body["error"]["code"]) == (400, "malformed_json")

    status, body, _ = await post(ingest, source, {"Content-Type": "application/x-www-form-urlencoded"}, b"a=\xff")
    assert (status, body["error"]["code"]) == (400, "malformed_form")


async def test_floods_get_429_with_retry_after_per_ip_and_per_source(start_ingest):
    ingest = await start_ingest(rate_limit_per_ip=5, rate_limit_per_source=1000)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    statuses = []
    for _ in range(8):
        status, body, headers = await post(ingest, source, {"Content-Type": "application/json"}, b"{}")
        statuses.append(status)
    assert statuses == [200] * 5 + [429] * 3
    assert body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1

    limited = await ingest.source(key, "none", rate_limit_per_source=2, rate_limit_per_ip=100)
    statuses = [(await post(ingest, limited, {"Content-Type": "application/json"}, b"{}"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_forwarded_for_is_believed_only_from_trusted_proxies(start_ingest):
    ingest = await start_ingest(rate_limit_per_ip=2, trusted_proxies=("127.0.0.1/32",))
    key = await ingest.tenant()
    source = await ingest.source(key, "none", allowed_cidrs=["203.0.113.0/24"])
    headers = {"Content-Type": "application/json"}
    # Through the trusted proxy (127.0.0.1): each forwarded client has its own budget.
    for client in ("203.0.113.7", "203.0.113.8"):
        for _ in range(2):
            status, body, _ = await post(
                ingest, source, {**headers, "X-Forwarded-For": f"198.51.100.1, {client}"}, b"{}"
            )
            assert status == 200, body
    # A client outside the source's allow-list is refused even with a forged left-most hop.
    status, body, _ = await post(ingest, source, {**headers, "X-Forwarded-For": "203.0.113.9, 192.0.2.1"}, b"{}")
    assert (status, body["error"]["code"]) == (403, "sender_not_allowed")


async def test_forwarded_for_is_ignored_from_untrusted_peers(start_ingest):
    ingest = await start_ingest()
    key = await ingest.tenant()
    source = await ingest.source(key, "none", allowed_cidrs=["203.0.113.0/24"])
    status, body, _ = await post(
        ingest, source, {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7"}, b"{}"
    )
    assert (status, body["error"]["code"]) == (403, "sender_not_allowed")


async def test_payload_schema_names_missing_fields(ingest):
    key = await ingest.tenant()
    schema = {
        "required": ["type", "content"],
        "types": {
            "reservation_update": ["metadata.reservation_id", "metadata.status"],
            "promo": ["metadata.promo_id", "metadata.valid_until", "metadata.discount"],
            "user_info": ["user_id"],
        },
        "allow_unknown_types": False,
    }
    source = await ingest.source(key, "hmac", secrets=[SECRET], schema=schema)

    async def send(payload):
        body = json.dumps(payload).encode()
        return await post(
            ingest, source, {"X-Webhook-Signature": _hex(SECRET, body), "Content-Type": "application/json"}, body
        )

    status, body, _ = await send({"type": "reservation_update", "content": "ok", "metadata": {"status": "confirmed"}})
    assert status == 400 and body["error"]["missing"] == ["metadata.reservation_id"]
    status, body, _ = await send({"type": "promo", "metadata": {"promo_id": "p"}})
    assert body["error"]["missing"] == ["content", "metadata.valid_until", "metadata.discount"]
    status, body, _ = await send({"type": "lottery", "content": "x"})
    assert (status, body["error"]["code"]) == (400, "unknown_message_type")
    status, body, _ = await send(
        {
            "type": "reservation_update",
            "content": "ok",
            "metadata": {"reservation_id": "res_abc123", "status": "confirmed"},
        }
    )
    assert status == 200, body


async def test_meta_handshake_and_slack_url_verification(ingest):
    key = await ingest.tenant()
    meta = await ingest.source(key, "meta", secrets=[SECRET], options={"verify_token": "my-token"})
    query = {"hub.mode": "subscribe", "hub.verify_token": "my-token", "hub.challenge": "1158201444"}
    status, body, _ = await ingest.call("GET", f"/in/{meta['id']}", params=query)
    assert (status, body) == (200, "1158201444")
    status, body, _ = await ingest.call("GET", f"/in/{meta['id']}", params={**query, "hub.verify_token": "nope"})
    assert status == 403
    status, shown, _ = await ingest.call("GET", f"/v1/sources/{meta['id']}", token=key)
    assert shown["options"]["verify_token"] == "***"

    slack = await ingest.source(key, "slack", secrets=[SECRET])
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    ts = str(int(time.time()))
    headers = {
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body),
        "X-Slack-Request-Timestamp": ts,
        "Content-Type": "application/json",
    }
    status, answer, _ = await post(ingest, slack, headers, body.encode())
    assert status == 200 and answer == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_root_path_and_twilio_url_behind_a_proxy(start_ingest):
    ingest = await start_ingest(root_path="/hooks", trusted_proxies=("127.0.0.1/32",))
    key = await ingest.tenant()
    source = await ingest.source(key, "twilio", secrets=[SECRET])
    assert source["url"] == f"{ingest.base}/hooks/in/{source['id']}"
    # The provider called https://hooks.example.com/hooks/in/...; the proxy forwards plain HTTP.
    public = f"https://hooks.example.com/hooks/in/{source['id']}"
    headers, body = twilio_case(public)
    proxied = {**headers, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    status, answer, _ = await post(ingest, source, proxied, body)
    assert status == 200, answer
    # A proxy that strips the prefix reaches the same route without it.
    async with ingest.session.post(f"{ingest.base}/in/{source['id']}", headers=proxied, data=body) as response:
        assert response.status == 200
    status, _, _ = await ingest.call("GET", "/readyz")
    assert status == 200


async def test_message_log_lists_filters_and_shows_redacted_headers(ingest, start_dispatcher):
    await start_dispatcher()
    key = await ingest.tenant()
    first = await ingest.source(key, "none")
    second = await ingest.source(key, "none")
    for source in (first, second, first):
        status, _, _ = await post(
            ingest,
            source,
            {"Content-Type": "application/json", "Authorization": "Bearer sender-secret"},
            b'{"type": "a"}',
        )
        assert status == 200
    everything = await ingest.wait_for_messages(key, 3)
    only_first = await ingest.wait_for_messages(key, 2, source_id=first["id"])
    assert {m["source_id"] for m in only_first} == {first["id"]}
    newest = everything[0]
    status, page, _ = await ingest.call("GET", "/v1/messages", token=key, params={"until": newest["received_at"]})
    assert newest["id"] not in [m["id"] for m in page["data"]]
    status, page, _ = await ingest.call("GET", "/v1/messages", token=key, params={"limit": "2"})
    status, rest, _ = await ingest.call("GET", "/v1/messages", token=key, params={"cursor": page["next_cursor"]})
    assert [m["id"] for m in page["data"] + rest["data"]] == [m["id"] for m in everything]

    status, full, _ = await ingest.call("GET", f"/v1/messages/{newest['id']}", token=key)
    assert full["body"] == '{"type": "a"}'
    names = [name.lower() for name, _ in full["headers"]]
    assert "authorization" not in names and "content-type" in names
    other = await ingest.tenant("other")
    status, _, _ = await ingest.call("GET", f"/v1/messages/{newest['id']}", token=other)
    assert status == 404
    status, body, _ = await ingest.call("GET", "/v1/messages", token=key, params={"since": "yesterday"})
    assert (status, body["error"]["code"]) == (400, "invalid_time")
