"""A test webhook as each provider would send it: its body, headers and signature.

`hookyard send-test --source` posts one of these to the source's URL, so the
whole receiving path runs as for the real sender: the signature is checked,
the event type derived, the message logged and delivered. Twilio and Mailgun
sign the public URL and form fields their own way; their consoles send tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable

import orjson

from hookyard_cli.api import CliError

Headers = dict[str, str]


def _mac(secret: str | bytes, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).digest()


def _hmac(body: bytes, secret: str, options: dict) -> Headers:
    digest = _mac(secret, body)
    encoded = digest.hex() if options.get("encoding", "hex") == "hex" else base64.b64encode(digest).decode()
    return {options.get("signature_header") or "X-Webhook-Signature": options.get("signature_prefix", "") + encoded}


def _standard_webhooks(body: bytes, secret: str, options: dict) -> Headers:
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signature = base64.b64encode(_mac(key, f"{msg_id}.{stamp}.".encode() + body)).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}"}


def _stripe(body: bytes, secret: str, options: dict) -> Headers:
    stamp = str(int(time.time()))
    return {"Stripe-Signature": f"t={stamp},v1={_mac(secret, f'{stamp}.'.encode() + body).hex()}"}


def _github(body: bytes, secret: str, options: dict) -> Headers:
    return {
        "X-Hub-Signature-256": f"sha256={_mac(secret, body).hex()}",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


def _meta(body: bytes, secret: str, options: dict) -> Headers:
    return {"X-Hub-Signature-256": f"sha256={_mac(secret, body).hex()}"}


def _shopify(body: bytes, secret: str, options: dict) -> Headers:
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(_mac(secret, body)).decode(),
        "X-Shopify-Topic": "hookyard/test",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }


def _slack(body: bytes, secret: str, options: dict) -> Headers:
    stamp = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + _mac(secret, f"v0:{stamp}:".encode() + body).hex(),
    }


def _none(body: bytes, secret: str, options: dict) -> Headers:
    return {}


SIGNERS: dict[str, Callable[[bytes, str, dict], Headers]] = {
    "hmac": _hmac,
    "standard_webhooks": _standard_webhooks,
    "stripe": _stripe,
    "github": _github,
    "meta": _meta,
    "shopify": _shopify,
    "slack": _slack,
    "none": _none,
}


def sample_body(provider: str, options: dict) -> bytes:
    """A small body in the provider's shape, so its event type is derived as for a real one."""
    test_id = f"test_{uuid.uuid4().hex[:16]}"
    if provider == "meta":
        message = {"from": "15550000000", "id": f"wamid.{test_id}", "type": "text", "text": {"body": "hookyard test"}}
        change = {"field": "messages", "value": {"messaging_product": "whatsapp", "messages": [message]}}
        return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": test_id, "changes": [change]}]})
    if provider == "stripe":
        return orjson.dumps({"id": f"evt_{test_id}", "object": "event", "type": "hookyard.test", "data": {}})
    field = options.get("event_type_field") or "type"
    return orjson.dumps({"id": test_id, field: "hookyard.test", "message": "a test from hookyard send-test"})


def signed_test(provider: str, secret: str | None, options: dict) -> tuple[bytes, Headers]:
    """The body and headers of a test webhook; CliError when this provider cannot be signed here."""
    signer = SIGNERS.get(provider)
    if signer is None:
        raise CliError(f"send-test cannot sign as {provider}: use the provider's own test button")
    if secret is None and provider != "none":
        raise CliError("the source's signing secret is needed: pass --secret or set HOOKYARD_SOURCE_SECRET")
    body = sample_body(provider, options)
    return body, {"Content-Type": "application/json", **signer(body, secret or "", options)}
