"""Inbound provider verification: each verifier against the provider's own SDK (the referee).

Pure logic: no servers, no I/O. Requests are signed by the provider's SDK where one exists
(standardwebhooks, stripe, githubkit, twilio, slack_sdk), else per the provider's documented
formula (Mailgun, Shopify, Meta, the generic HMAC). Each provider is also shown refusing a
tampered body, a wrong secret, a missing signature header and, for timestamped schemes,
stale and future timestamps (the boundary itself is accepted).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe
from githubkit import webhooks as github_webhooks
from multidict import CIMultiDict, MultiDict
from slack_sdk.signature import Clock, SignatureVerifier
from standardwebhooks.webhooks import Webhook as StandardWebhook
from twilio.request_validator import RequestValidator

from hookyard_ingest.receiving.providers import (
    PROVIDERS,
    InboundRequest,
    OptionsError,
    Reply,
    VerificationError,
    Verified,
    normalize_event_type,
)
from hookyard_ingest.receiving.providers.mailgun import MAILGUN_TOKEN_MAX
from hookyard_ingest.receiving.providers.meta import meta_handshake
from hookyard_ingest.receiving.providers.signatures import MAX_SIGNATURE_ENTRIES
from hookyard_ingest.receiving.providers.twilio import MAX_FORM_FIELDS

NOW = 1_750_000_000
TOLERANCE = 300
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def request(
    body: bytes | str = b"",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    url: str = "https://hooks.example.com/hy/in/src_1",
    method: str = "POST",
    media_type: str | None = None,
    form: dict[str, list[str]] | None = None,
    now: float = NOW,
) -> InboundRequest:
    """An InboundRequest as the HTTP layer builds it: JSON parsed when the body is JSON."""
    raw = body.encode() if isinstance(body, str) else body
    parsed = None
    if form is None and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    if media_type is None:
        if form is not None:
            media_type = "application/x-www-form-urlencoded"
        else:
            media_type = "application/json" if parsed is not None else "text/plain"
    return InboundRequest(
        method=method,
        url=url,
        headers=CIMultiDict(headers or {}),
        body=raw,
        media_type=media_type,
        json=parsed,
        form=form,
        now=now,
    )


def form_request(fields: list[tuple[str, str]], headers: dict[str, str], **kw) -> InboundRequest:
    """A urlencoded POST: the raw body and its parsed fields (values in order received)."""
    form: dict[str, list[str]] = {}
    for key, value in fields:
        form.setdefault(key, []).append(value)
    return request(urlencode(fields), headers, form=form, **kw)


def verify(provider: str, req: InboundRequest, secrets: list[str], options=None) -> Verified:
    return PROVIDERS[provider].verify(req, secrets, options or {}, TOLERANCE)


def refused(provider: str, req: InboundRequest, secrets: list[str], options=None) -> str:
    with pytest.raises(VerificationError) as caught:
        verify(provider, req, secrets, options)
    return str(caught.value)


def hmac_sha256(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


NO_MATCH = "no signature matches"


def refusal(
    case: str,
    provider: str,
    req: InboundRequest,
    secrets: list[str] | None = None,
    reason: str = NO_MATCH,
    options: dict | None = None,
) -> Any:
    """A row of the refusal table: `provider` refuses `req` with `reason`; `secrets` default
    to the provider's right ones (the request itself is what is wrong)."""
    return pytest.param(provider, req, secrets, options or {}, reason, id=case)


# --- registry, options, event types ----------------------------------------------------------


def test_registry_holds_every_provider_by_name():
    assert set(PROVIDERS) == {
        "hmac",
        "standard_webhooks",
        "stripe",
        "github",
        "twilio",
        "mailgun",
        "slack",
        "shopify",
        "meta",
        "none",
    }
    assert all(provider.name == name for name, provider in PROVIDERS.items())


@pytest.mark.parametrize("name", sorted(set(PROVIDERS) - {"none"}))
@pytest.mark.parametrize("secrets", [[], [""]])
def test_a_source_without_secret_refuses_everything(name, secrets):
    options = {"verify_token": "tok"} if name == "meta" else {}
    req = request(b'{"type": "x"}', {"X-Webhook-Signature": "00"})
    assert refused(name, req, secrets, options) == "source has no secret"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_unknown_options_are_refused_by_name(name):
    options = {"bogus_option": 1, "verify_token": "tok"}
    with pytest.raises(OptionsError, match="bogus_option"):
        PROVIDERS[name].check_options(options)


@pytest.mark.parametrize("name", sorted(set(PROVIDERS) - {"hmac", "meta"}))
def test_providers_without_options_normalize_to_empty(name):
    assert PROVIDERS[name].check_options({}) == {}


def test_hmac_options_defaults():
    hmac_provider = PROVIDERS["hmac"]
    assert hmac_provider.check_options({}) == {
        "signature_header": "X-Webhook-Signature",
        "signature_prefix": "",
        "encoding": "hex",
        "event_type_field": "type",
        "id_header": None,
    }
    assert hmac_provider.check_options({"encoding": "base64"})["encoding"] == "base64"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"encoding": "rot13"}, "encoding"),
        ({"signature_header": "Bad Header"}, "signature_header"),
        ({"id_header": ""}, "id_header"),
        ({"event_type_field": 3}, "event_type_field"),
        ({"signature_prefix": None}, "signature_prefix"),
        (["not", "a", "mapping"], "options"),
    ],
)
def test_hmac_options_errors_name_the_option(options, named):
    with pytest.raises(OptionsError, match=named):
        PROVIDERS["hmac"].check_options(options)


def test_meta_options_keep_verify_token():
    assert PROVIDERS["meta"].check_options({"verify_token": "s3cret-token"}) == {"verify_token": "s3cret-token"}


@pytest.mark.parametrize("bad", [{}, {"verify_token": ""}, {"verify_token": 42}])
def test_meta_options_require_verify_token(bad):
    with pytest.raises(OptionsError, match="verify_token"):
        PROVIDERS["meta"].check_options(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("orders/create", "orders.create"),
        ("payment_intent.succeeded", "payment_intent.succeeded"),
        ("pull_request.opened", "pull_request.opened"),
        ("customer.subscription.trial_will_end", "customer.subscription.trial_will_end"),
        ("app_uninstalled", "app_uninstalled"),
        ("a//b::c  d", "a.b.c.d"),
        ("..leading..and..trailing..", "leading.and.trailing"),
        ("Order Created!", "Order.Created_"),
        ("café/créé", "caf_.cr_"),
        ("x-y_z", "x-y_z"),
        ("ok/💥/fine", "ok.fine"),
        ("", "fallback.type"),
        ("/ : .", "fallback.type"),
        ("💥", "fallback.type"),
        (None, "fallback.type"),
    ],
)
def test_normalize_event_type(raw, expected):
    result = normalize_event_type(raw, "fallback.type")
    assert result == expected
    assert EVENT_TYPE.fullmatch(result)


def test_normalize_event_type_truncates_to_fit_a_routing_key():
    assert normalize_event_type("a" * 300, "fb") == "a" * 200
    # A cut right after a dot leaves no empty last segment.
    result = normalize_event_type("a" * 199 + ".bbbb", "fb")
    assert result == "a" * 199
    assert EVENT_TYPE.fullmatch(result)


def test_a_type_is_worked_out_once_but_a_sender_s_huge_one_is_not_kept():
    """The types a source sends are cached (issue 18); a megabyte in `type` is answered the
    same way, uncached, so no sender can fill the process's memory with its types."""
    from hookyard_ingest.receiving.providers.event_naming import _dotted

    _dotted.cache_clear()
    assert normalize_event_type("orders/create", "fb") == normalize_event_type("orders/create", "fb") == "orders.create"
    assert _dotted.cache_info().hits == 1
    huge = "x/" * 500_000
    assert normalize_event_type(huge, "fb") == ("x." * 100).rstrip(".")
    assert _dotted.cache_info().currsize == 1


# --- hmac (generic) --------------------------------------------------------------------------

HMAC_BODY = b'{"id": "dlv_1", "type": "user/created", "data": {"n": 1}}'


def test_hmac_accepts_hex_signature_and_extracts_id_and_type():
    sig = hmac_sha256("s1", HMAC_BODY).hex()
    result = verify("hmac", request(HMAC_BODY, {"X-Webhook-Signature": sig}), ["s1"])
    assert result == Verified("dlv_1", "user.created", "hmac-sha256-hex")


def test_hmac_hex_is_case_insensitive_and_accepts_sha256_prefix_when_none_is_configured():
    sig = hmac_sha256("s1", HMAC_BODY).hex()
    for value in (sig.upper(), f"sha256={sig}"):
        assert verify("hmac", request(HMAC_BODY, {"X-Webhook-Signature": value}), ["s1"])


def test_hmac_configured_prefix_is_required():
    sig = hmac_sha256("s1", HMAC_BODY).hex()
    options = {"signature_header": "X-Sig", "signature_prefix": "v1:"}
    ok = verify("hmac", request(HMAC_BODY, {"X-Sig": f"v1:{sig}"}), ["s1"], options)
    assert ok.dedup_key == "dlv_1"
    reason = refused("hmac", request(HMAC_BODY, {"X-Sig": sig}), ["s1"], options)
    assert reason == "X-Sig lacks the expected prefix"


def test_hmac_base64_encoding_custom_fields_and_id_header():
    body = b'{"id": 7, "event": "invoice.paid"}'
    sig = base64.b64encode(hmac_sha256("s1", body)).decode()
    options = {"encoding": "base64", "event_type_field": "event", "id_header": "X-Delivery"}
    headers = {"X-Webhook-Signature": sig, "X-Delivery": "d-42"}
    result = verify("hmac", request(body, headers), ["s1"], options)
    assert result == Verified("d-42", "invoice.paid", "hmac-sha256-base64")
    # No id header on this request, and a non-string JSON id: no dedup key.
    result = verify("hmac", request(body, {"X-Webhook-Signature": sig}), ["s1"], options)
    assert result.dedup_key is None
    # Hex is not accepted when base64 is configured.
    hex_sig = hmac_sha256("s1", body).hex()
    assert refused("hmac", request(body, {"X-Webhook-Signature": hex_sig}), ["s1"], options) in {
        "malformed X-Webhook-Signature header",
        "no signature matches",
    }


def test_hmac_fallback_event_type_for_non_json_body():
    sig = hmac_sha256("s1", b"plain text").hex()
    result = verify("hmac", request(b"plain text", {"X-Webhook-Signature": sig}), ["s1"])
    assert result == Verified(None, "hmac.received", "hmac-sha256-hex")


HMAC_GOOD = request(HMAC_BODY, {"X-Webhook-Signature": hmac_sha256("new", HMAC_BODY).hex()})
HMAC_REFUSALS = [
    refusal("hmac-tampered", "hmac", request(HMAC_BODY.replace(b"1}", b"2}"), HMAC_GOOD.headers), ["old", "new"]),
    refusal("hmac-wrong-secret", "hmac", HMAC_GOOD, ["old", "other"]),
    refusal("hmac-missing", "hmac", request(HMAC_BODY), ["new"], "missing X-Webhook-Signature header"),
    refusal(
        "hmac-malformed",
        "hmac",
        request(HMAC_BODY, {"X-Webhook-Signature": "zz-not-hex"}),
        ["new"],
        "malformed X-Webhook-Signature header",
    ),
]


# --- Standard Webhooks ----------------------------------------------------------------------

SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-key-32b").decode()
SW_OTHER = "whsec_" + base64.b64encode(b"another-secret-key-of-32-bytes!!").decode()
SW_BODY = '{"type": "invoice.paid", "data": {"amount": 100}}'


def sw_headers(secret: str, ts: int, body: str = SW_BODY, prefix: str = "webhook") -> dict:
    sig = StandardWebhook(secret).sign("msg_abc", datetime.fromtimestamp(ts, tz=UTC), body)
    return {f"{prefix}-id": "msg_abc", f"{prefix}-timestamp": str(ts), f"{prefix}-signature": sig}


def test_standard_webhooks_accepts_what_the_sdk_signs_and_the_sdk_agrees():
    now = int(time.time())
    headers = sw_headers(SW_SECRET, now)
    result = verify("standard_webhooks", request(SW_BODY, headers, now=now), [SW_SECRET])
    assert result == Verified("msg_abc", "invoice.paid", "standard-webhooks-v1")
    # The referee verifies the same request (with its own clock).
    assert StandardWebhook(SW_SECRET).verify(SW_BODY.encode(), headers) == json.loads(SW_BODY)


def test_standard_webhooks_svix_headers_and_secret_without_prefix():
    headers = sw_headers(SW_SECRET, NOW, prefix="svix")
    bare_secret = SW_SECRET.removeprefix("whsec_")
    result = verify("standard_webhooks", request(SW_BODY, headers), [bare_secret])
    assert result.dedup_key == "msg_abc"


def test_standard_webhooks_rotation_and_several_signatures_in_header():
    headers = sw_headers(SW_SECRET, NOW)
    old_sig = sw_headers(SW_OTHER, NOW)["webhook-signature"]
    headers["webhook-signature"] = f"v1a,ignored-asymmetric {old_sig} {headers['webhook-signature']}"
    assert verify("standard_webhooks", request(SW_BODY, headers), [SW_OTHER, SW_SECRET])
    # Only the second secret matches the (single) signature.
    single = sw_headers(SW_SECRET, NOW)
    assert verify("standard_webhooks", request(SW_BODY, single), [SW_OTHER, SW_SECRET])


SW_GOOD = request(SW_BODY, sw_headers(SW_SECRET, NOW))
SW_REFUSALS = [
    refusal("standard_webhooks-tampered", "standard_webhooks", request(SW_BODY.replace("100", "999"), SW_GOOD.headers)),
    refusal("standard_webhooks-wrong-secret", "standard_webhooks", SW_GOOD, [SW_OTHER]),
    # The id is signed too.
    refusal(
        "standard_webhooks-other-id",
        "standard_webhooks",
        request(SW_BODY, {**SW_GOOD.headers, "webhook-id": "msg_other"}),
    ),
    *(
        refusal(
            f"standard_webhooks-missing-{name}",
            "standard_webhooks",
            request(SW_BODY, {k: v for k, v in SW_GOOD.headers.items() if k != name}),
            reason=f"missing {name} header",
        )
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    ),
    refusal(
        "standard_webhooks-invalid-timestamp",
        "standard_webhooks",
        request(SW_BODY, {**SW_GOOD.headers, "webhook-timestamp": "17e8"}),
        reason="invalid timestamp",
    ),
]


# --- Stripe ----------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_stripe_endpoint_secret"
STRIPE_OTHER = "whsec_previous_endpoint_secret"
STRIPE_BODY = json.dumps(
    {
        "id": "evt_1PqR2sT",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 2000}},
    }
)


def stripe_header(secret: str, ts: int, body: str = STRIPE_BODY) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=ts)


def test_stripe_accepts_what_the_sdk_signs_and_the_sdk_agrees():
    now = int(time.time())
    header = stripe_header(STRIPE_SECRET, now)
    req = request(STRIPE_BODY, {"Stripe-Signature": header}, now=now)
    result = verify("stripe", req, [STRIPE_SECRET])
    assert result == Verified("evt_1PqR2sT", "payment_intent.succeeded", "stripe-v1")
    event = stripe.Webhook.construct_event(STRIPE_BODY, header, STRIPE_SECRET)
    assert event.id == "evt_1PqR2sT"


def test_stripe_rotation_and_header_with_several_v1_and_v0():
    old = stripe_header(STRIPE_OTHER, NOW).split(",")[1]
    new = stripe_header(STRIPE_SECRET, NOW)
    header = f"{new},{old},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    assert verify("stripe", request(STRIPE_BODY, {"Stripe-Signature": header}), [STRIPE_SECRET])
    single = request(STRIPE_BODY, {"Stripe-Signature": new})
    assert verify("stripe", single, [STRIPE_OTHER, STRIPE_SECRET]).dedup_key == "evt_1PqR2sT"


def test_stripe_reads_the_first_timestamp_like_the_sdk():
    header = stripe_header(STRIPE_SECRET, NOW)
    t_part, v1_part = header.split(",")
    doubled = request(STRIPE_BODY, {"Stripe-Signature": f"{t_part},t={NOW + 99},{v1_part}"})
    assert verify("stripe", doubled, [STRIPE_SECRET]).dedup_key == "evt_1PqR2sT"


def test_stripe_uses_the_secret_as_is_not_base64_decoded():
    # A secret that is valid base64 after 'whsec_': decoding it would change the key.
    secret = "whsec_" + base64.b64encode(b"sixteen byte key").decode()
    req = request(STRIPE_BODY, {"Stripe-Signature": stripe_header(secret, NOW)})
    assert verify("stripe", req, [secret]).event_type == "payment_intent.succeeded"


STRIPE_GOOD_HEADER = stripe_header(STRIPE_SECRET, NOW)
STRIPE_V1 = STRIPE_GOOD_HEADER.split(",")[1]


def stripe_refusal(name: str, header: str | None, reason: str, body: str = STRIPE_BODY, secret: str = STRIPE_SECRET):
    headers = {"Stripe-Signature": header} if header is not None else {}
    return refusal(f"stripe-{name}", "stripe", request(body, headers), [secret], reason)


STRIPE_REFUSALS = [
    stripe_refusal("tampered", STRIPE_GOOD_HEADER, NO_MATCH, body=STRIPE_BODY.replace("2000", "1")),
    stripe_refusal("wrong-secret", STRIPE_GOOD_HEADER, NO_MATCH, secret=STRIPE_OTHER),
    stripe_refusal("missing", None, "missing Stripe-Signature header"),
    stripe_refusal("only-v0", f"t={NOW},v0=abcd", "no v1 signature in Stripe-Signature header"),
    stripe_refusal("no-timestamp", STRIPE_V1, "no timestamp in Stripe-Signature header"),
    stripe_refusal("invalid-timestamp", "t=soon," + STRIPE_V1, "invalid timestamp"),
    # Moving the signature to another timestamp breaks it.
    stripe_refusal("moved", STRIPE_GOOD_HEADER.replace(f"t={NOW}", f"t={NOW + 1}"), NO_MATCH),
]


# --- GitHub ----------------------------------------------------------------------------------

GH_BODY = '{"action": "opened", "number": 5, "pull_request": {"id": 1}}'


def gh_headers(secret: str, body: str = GH_BODY, event: str = "pull_request") -> dict:
    return {
        "X-Hub-Signature-256": github_webhooks.sign(secret, body, method="sha256"),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }


def test_github_accepts_what_githubkit_signs_and_githubkit_agrees():
    headers = gh_headers("gh-secret")
    result = verify("github", request(GH_BODY, headers), ["gh-secret"])
    assert result == Verified("72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request.opened", "github-sha256")
    assert github_webhooks.verify("gh-secret", GH_BODY, headers["X-Hub-Signature-256"])


def test_github_ping_has_no_action():
    body = '{"zen": "Keep it logically awesome.", "hook_id": 1}'
    result = verify("github", request(body, gh_headers("s", body, "ping")), ["s"])
    assert result.event_type == "ping"


GH_GOOD = request(GH_BODY, gh_headers("new"))
GH_SHA1_ONLY = {
    "X-Hub-Signature": github_webhooks.sign("new", GH_BODY, method="sha1"),
    "X-GitHub-Event": "pull_request",
}
GH_REFUSALS = [
    refusal("github-tampered", "github", request(GH_BODY.replace("5", "6"), GH_GOOD.headers), ["new"]),
    refusal("github-wrong-secret", "github", GH_GOOD, ["old"]),
    refusal("github-missing", "github", request(GH_BODY, GH_SHA1_ONLY), ["new"], "missing X-Hub-Signature-256 header"),
    refusal(
        "github-malformed",
        "github",
        request(GH_BODY, {"X-Hub-Signature-256": GH_GOOD.headers["X-Hub-Signature-256"][7:]}),
        ["new"],
        "malformed X-Hub-Signature-256 header",
    ),
]


# --- Twilio ----------------------------------------------------------------------------------

TW_URL = "https://hooks.example.com/hy/in/src_tw?tenant=t1"
TW_TOKEN = "12345678901234567890123456789012"
TW_OTHER = "abcdefabcdefabcdefabcdefabcdefab"
TW_INBOUND = [
    ("MessageSid", "SM1234567890abcdef1234567890abcd"),
    ("SmsSid", "SM1234567890abcdef1234567890abcd"),
    ("AccountSid", "AC0123"),
    ("From", "+14155550100"),
    ("To", "+14155550199"),
    ("Body", "Hello & welcome: 100% ünïcode"),
    ("SmsStatus", "received"),
    ("NumMedia", "0"),
]


def tw_sig(token: str, url: str, fields: list[tuple[str, str]], **kw) -> str:
    params: Any = MultiDict(fields) if fields else {}
    return RequestValidator(token).compute_signature(url, params, **kw)


def test_twilio_accepts_what_the_sdk_signs_and_the_sdk_agrees():
    sig = tw_sig(TW_TOKEN, TW_URL, TW_INBOUND)
    headers = {"X-Twilio-Signature": sig, "I-Twilio-Idempotency-Token": "idem-1"}
    result = verify("twilio", form_request(TW_INBOUND, headers, url=TW_URL), [TW_TOKEN])
    assert result == Verified("idem-1", "twilio.message", "twilio-hmac-sha1")
    assert RequestValidator(TW_TOKEN).validate(TW_URL, MultiDict(TW_INBOUND), sig)


def test_twilio_repeated_fields_are_sorted_by_value():
    fields = [("To", "+1555"), ("MediaUrl", "https://b.example/2"), ("MediaUrl", "https://a/1")]
    sig = tw_sig(TW_TOKEN, TW_URL, fields)
    assert verify("twilio", form_request(fields, {"X-Twilio-Signature": sig}, url=TW_URL), [TW_TOKEN])


def test_twilio_repeated_identical_values_kept_or_merged():
    # Twilio's docs append every field; the Python RequestValidator merges identical values
    # (sorted(set(values))). Both forms of the signed string are accepted.
    fields = [("Tag", "b"), ("Tag", "a"), ("Tag", "b")]
    kept = TW_URL + "TagaTagbTagb"
    by_docs = base64.b64encode(hmac.new(TW_TOKEN.encode(), kept.encode(), hashlib.sha1).digest()).decode()
    by_sdk = tw_sig(TW_TOKEN, TW_URL, fields)
    assert by_docs != by_sdk
    for sig in (by_docs, by_sdk):
        req = form_request(fields, {"X-Twilio-Signature": sig}, url=TW_URL)
        assert verify("twilio", req, [TW_TOKEN]).event_type == "twilio.received"
    unsorted = TW_URL + "TagbTagaTagb"
    bad = base64.b64encode(hmac.new(TW_TOKEN.encode(), unsorted.encode(), hashlib.sha1).digest()).decode()
    req = form_request(fields, {"X-Twilio-Signature": bad}, url=TW_URL)
    assert refused("twilio", req, [TW_TOKEN]) == "no signature matches"


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        ("https://hooks.example.com/hy/in/src_tw", "https://hooks.example.com:443/hy/in/src_tw"),
        ("https://hooks.example.com:443/hy/in/src_tw", "https://hooks.example.com/hy/in/src_tw"),
        ("http://hooks.example.com:80/x?a=1", "http://hooks.example.com/x?a=1"),
    ],
)
def test_twilio_url_with_and_without_default_port(signed_url, called_url):
    sig = tw_sig(TW_TOKEN, signed_url, TW_INBOUND)
    req = form_request(TW_INBOUND, {"X-Twilio-Signature": sig}, url=called_url)
    assert verify("twilio", req, [TW_TOKEN]).event_type == "twilio.message"
    assert RequestValidator(TW_TOKEN).validate(called_url, MultiDict(TW_INBOUND), sig)


def test_twilio_json_body_is_checked_through_body_sha256():
    body = '{"MessageSid": "SM1", "Status": "delivered"}'
    body_hash = hashlib.sha256(body.encode()).hexdigest()
    url = f"https://hooks.example.com/hy/in/src_tw?bodySHA256={body_hash}"
    sig = tw_sig(TW_TOKEN, url, [])
    assert RequestValidator(TW_TOKEN).validate(url, body, sig)
    headers = {"X-Twilio-Signature": sig, "I-Twilio-Idempotency-Token": "idem-json"}
    result = verify("twilio", request(body, headers, url=url), [TW_TOKEN])
    assert result == Verified("idem-json", "twilio.received", "twilio-hmac-sha1")
    tampered = request(body.replace("delivered", "failed"), headers, url=url)
    assert refused("twilio", tampered, [TW_TOKEN]) == "body does not match bodySHA256"
    # A JSON body whose URL carries no bodySHA256 is not covered by any signature.
    bare_url = "https://hooks.example.com/hy/in/src_tw"
    bare = request(body, {"X-Twilio-Signature": tw_sig(TW_TOKEN, bare_url, [])}, url=bare_url)
    assert refused("twilio", bare, [TW_TOKEN]) == ("body is not covered by the signature (no bodySHA256)")


def test_twilio_shared_key_hmac_sha256():
    sig = tw_sig(TW_TOKEN, TW_URL, TW_INBOUND, algorithm="HMAC_SHA256")
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    headers = {"X-Twilio-Signature": sig, "X-Twilio-Webhooks-Signature-Settings": settings}
    result = verify("twilio", form_request(TW_INBOUND, headers, url=TW_URL), [TW_TOKEN])
    assert result.signature_scheme == "twilio-hmac-sha256"
    assert RequestValidator(TW_TOKEN).validate(TW_URL, MultiDict(TW_INBOUND), sig, algorithm="HMAC_SHA256")
    # Without the settings header the same signature is read as SHA-1 and fails.
    plain = form_request(TW_INBOUND, {"X-Twilio-Signature": sig}, url=TW_URL)
    assert refused("twilio", plain, [TW_TOKEN]) == "no signature matches"
    odd = {**headers, "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_MD5"}
    assert refused("twilio", form_request(TW_INBOUND, odd, url=TW_URL), [TW_TOKEN]) == (
        "unsupported signature algorithm"
    )


@pytest.mark.parametrize(
    ("fields", "event_type", "dedup_key"),
    [
        (TW_INBOUND, "twilio.message", "SM1234567890abcdef1234567890abcd"),
        (
            [("MessageSid", "SM9"), ("MessageStatus", "delivered"), ("SmsStatus", "delivered")],
            "twilio.message.status",
            "SM9:delivered",
        ),
        ([("SmsSid", "SM8"), ("SmsStatus", "sent")], "twilio.message.status", "SM8:sent"),
        ([("CallSid", "CA7"), ("CallStatus", "ringing")], "twilio.call", "CA7:ringing"),
        ([("CallSid", "CA6")], "twilio.call", "CA6"),
        ([("Foo", "bar")], "twilio.received", None),
    ],
)
def test_twilio_event_type_and_dedup_without_idempotency_token(fields, event_type, dedup_key):
    sig = tw_sig(TW_TOKEN, TW_URL, fields)
    result = verify("twilio", form_request(fields, {"X-Twilio-Signature": sig}, url=TW_URL), [TW_TOKEN])
    assert (result.event_type, result.dedup_key) == (event_type, dedup_key)


TW_GOOD = form_request(TW_INBOUND, {"X-Twilio-Signature": tw_sig(TW_TOKEN, TW_URL, TW_INBOUND)}, url=TW_URL)
TW_CHANGED = [(k, "Goodbye" if k == "Body" else v) for k, v in TW_INBOUND]
TW_REFUSALS = [
    refusal("twilio-wrong-secret", "twilio", TW_GOOD, [TW_OTHER]),
    refusal("twilio-tampered", "twilio", form_request(TW_CHANGED, TW_GOOD.headers, url=TW_URL), [TW_TOKEN]),
    refusal("twilio-elsewhere", "twilio", form_request(TW_INBOUND, TW_GOOD.headers, url=TW_URL + "&x=1"), [TW_TOKEN]),
    refusal(
        "twilio-missing",
        "twilio",
        form_request(TW_INBOUND, {}, url=TW_URL),
        [TW_TOKEN],
        "missing X-Twilio-Signature header",
    ),
]


def test_twilio_get_request_signs_the_url_only():
    url = "https://hooks.example.com/hy/in/src_tw?CallSid=CA1&From=%2B1555"
    sig = tw_sig(TW_TOKEN, url, [])
    req = request(b"", {"X-Twilio-Signature": sig}, url=url, method="GET")
    assert verify("twilio", req, [TW_TOKEN]).signature_scheme == "twilio-hmac-sha1"


# --- Mailgun ---------------------------------------------------------------------------------

MG_KEY = "key-mailgun-signing-key"
MG_TOKEN = "c2d4a7b2e9f0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7"


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    # Mailgun docs ('Securing webhooks'): concatenate timestamp and token, then
    # hex(HMAC-SHA256(webhook signing key, timestamp + token)).
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_json(key: str, ts: int, token: str = MG_TOKEN, event: str = "delivered") -> str:
    return json.dumps(
        {
            "signature": {
                "timestamp": str(ts),
                "token": token,
                "signature": mailgun_signature(key, str(ts), token),
            },
            "event-data": {"event": event, "id": "CPgfbmQMTCKtHW6uIWtuVe", "recipient": "a@b.c"},
        }
    )


def test_mailgun_json_webhook_accepted():
    result = verify("mailgun", request(mailgun_json(MG_KEY, NOW)), [MG_KEY])
    assert result == Verified(MG_TOKEN, "mailgun.delivered", "mailgun-hmac-sha256")
    result = verify("mailgun", request(mailgun_json(MG_KEY, NOW, event="failed")), [MG_KEY])
    assert result.event_type == "mailgun.failed"


def test_mailgun_form_post_accepted():
    fields = [
        ("recipient", "in@example.com"),
        ("sender", "bob@example.com"),
        ("subject", "Hi"),
        ("body-plain", "Hello"),
        ("timestamp", str(NOW)),
        ("token", MG_TOKEN),
        ("signature", mailgun_signature(MG_KEY, str(NOW), MG_TOKEN)),
    ]
    result = verify("mailgun", form_request(fields, {}), ["other", MG_KEY])
    assert result == Verified(MG_TOKEN, "mailgun.inbound", "mailgun-hmac-sha256")


MG_SIGNED = json.loads(mailgun_json(MG_KEY, NOW))


def mailgun_refusal(name: str, signature: dict | None, reason: str = "no signature matches", secret: str = MG_KEY):
    body = {"signature": {**MG_SIGNED["signature"], **signature}} if signature is not None else {}
    body["event-data"] = MG_SIGNED["event-data"]
    return refusal(f"mailgun-{name}", "mailgun", request(json.dumps(body)), [secret], reason)


MG_REFUSALS = [
    mailgun_refusal("wrong-secret", {}, secret="old"),
    # Mailgun signs timestamp + token (not the body): tampering with either is caught.
    mailgun_refusal("forged-token", {"token": "f" * 50}),
    mailgun_refusal("moved-timestamp", {"timestamp": str(NOW + 1)}),
    mailgun_refusal("unsigned", None, "missing Mailgun signature fields"),
    mailgun_refusal("invalid-timestamp", {"timestamp": "yesterday"}, "invalid timestamp"),
]


# --- Slack -----------------------------------------------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_EVENT = json.dumps(
    {
        "type": "event_callback",
        "event_id": "Ev0PV52K21",
        "event": {"type": "message", "text": "hi", "channel": "C1"},
    }
)


class FixedClock(Clock):
    def now(self) -> float:
        return NOW


def slack_headers(secret: str, ts: int, body: str) -> dict:
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Signature": sig, "X-Slack-Request-Timestamp": str(ts)}


def test_slack_event_callback_accepted_and_the_sdk_agrees():
    headers = slack_headers(SLACK_SECRET, NOW, SLACK_EVENT)
    result = verify("slack", request(SLACK_EVENT, headers), [SLACK_SECRET])
    assert result == Verified("Ev0PV52K21", "event_callback.message", "slack-v0")
    referee = SignatureVerifier(SLACK_SECRET, clock=FixedClock())
    assert referee.is_valid(body=SLACK_EVENT, timestamp=str(NOW), signature=headers["X-Slack-Signature"])


def test_slack_url_verification():
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"})
    result = verify("slack", request(body, slack_headers(SLACK_SECRET, NOW, body)), [SLACK_SECRET])
    assert result == Verified(None, "url_verification", "slack-v0")


def test_slack_slash_command_and_interaction_forms():
    command = [("command", "/weather"), ("text", "94070"), ("trigger_id", "13345224609.738474920")]
    body = urlencode(command)
    req = form_request(command, slack_headers(SLACK_SECRET, NOW, body))
    assert verify("slack", req, [SLACK_SECRET]) == Verified("13345224609.738474920", "slack.command", "slack-v0")
    payload = json.dumps({"type": "block_actions", "trigger_id": "999.111", "actions": []})
    interaction = [("payload", payload)]
    req = form_request(interaction, slack_headers(SLACK_SECRET, NOW, urlencode(interaction)))
    assert verify("slack", req, [SLACK_SECRET]) == Verified("999.111", "slack.interaction", "slack-v0")


SLACK_GOOD = slack_headers(SLACK_SECRET, NOW, SLACK_EVENT)


def slack_refusal(name: str, headers: dict, reason: str = "no signature matches", body: str = SLACK_EVENT):
    return refusal(f"slack-{name}", "slack", request(body, headers), [SLACK_SECRET], reason)


SLACK_REFUSALS = [
    slack_refusal("tampered", SLACK_GOOD, body=SLACK_EVENT.replace("hi", "ho")),
    refusal("slack-wrong-secret", "slack", request(SLACK_EVENT, SLACK_GOOD), ["old-secret"]),
    slack_refusal("missing", {"X-Slack-Request-Timestamp": str(NOW)}, "missing X-Slack-Signature header"),
    slack_refusal(
        "missing-timestamp",
        {"X-Slack-Signature": SLACK_GOOD["X-Slack-Signature"]},
        "missing X-Slack-Request-Timestamp header",
    ),
    slack_refusal("moved", {**SLACK_GOOD, "X-Slack-Request-Timestamp": str(NOW - 1)}),
    slack_refusal("invalid-timestamp", {**SLACK_GOOD, "X-Slack-Request-Timestamp": "now"}, "invalid timestamp"),
    slack_refusal(
        "v1",
        {**SLACK_GOOD, "X-Slack-Signature": SLACK_GOOD["X-Slack-Signature"].replace("v0=", "v1=")},
        "malformed X-Slack-Signature header",
    ),
]


# --- Shopify ---------------------------------------------------------------------------------

SHOP_SECRET = "shpss_client_secret"
SHOP_BODY = '{"id": 820982911946154508, "email": "jon@example.com", "total_price": "10.00"}'


def shopify_headers(secret: str, body: str = SHOP_BODY) -> dict:
    # Shopify docs ('Verify webhooks'): base64(HMAC-SHA256(client secret, raw body)).
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Shop-Domain": "shop.myshopify.com",
    }


def test_shopify_accepted_with_topic_and_webhook_id():
    result = verify("shopify", request(SHOP_BODY, shopify_headers(SHOP_SECRET)), [SHOP_SECRET])
    assert result == Verified("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders.create", "shopify-hmac-sha256")
    headers = shopify_headers(SHOP_SECRET)
    del headers["X-Shopify-Webhook-Id"]
    result = verify("shopify", request(SHOP_BODY, headers), [SHOP_SECRET])
    assert result.dedup_key == "98880550-7158-44d4-b7cd-2c97c8a091b5"


SHOP_GOOD = shopify_headers(SHOP_SECRET)
SHOP_UNSIGNED = {k: v for k, v in SHOP_GOOD.items() if k != "X-Shopify-Hmac-Sha256"}
SHOP_REFUSALS = [
    refusal("shopify-tampered", "shopify", request(SHOP_BODY.replace("10.00", "0.01"), SHOP_GOOD), [SHOP_SECRET]),
    refusal("shopify-wrong-secret", "shopify", request(SHOP_BODY, SHOP_GOOD), ["old"]),
    refusal(
        "shopify-missing",
        "shopify",
        request(SHOP_BODY, SHOP_UNSIGNED),
        [SHOP_SECRET],
        "missing X-Shopify-Hmac-Sha256 header",
    ),
    refusal(
        "shopify-malformed",
        "shopify",
        request(SHOP_BODY, {**SHOP_UNSIGNED, "X-Shopify-Hmac-Sha256": "%%%"}),
        [SHOP_SECRET],
        "malformed X-Shopify-Hmac-Sha256 header",
    ),
]


# --- Meta ------------------------------------------------------------------------------------

META_SECRET = "meta-app-secret"
META_OPTIONS = {"verify_token": "my-verify-token"}
META_BODY = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {}}]}],
    }
)


def meta_headers(secret: str, body: str = META_BODY) -> dict:
    # Meta docs (Webhooks, 'Validate payloads'): 'sha256=' + hex(HMAC-SHA256(app secret, body)).
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


def test_meta_accepted_with_object_type_and_body_hash_dedup():
    req = request(META_BODY, meta_headers(META_SECRET))
    result = verify("meta", req, [META_SECRET], META_OPTIONS)
    assert result == Verified(
        hashlib.sha256(META_BODY.encode()).hexdigest(),
        "meta.whatsapp.messages",
        "meta-sha256",
    )
    body = '{"entry": []}'
    fallback = verify("meta", request(body, meta_headers(META_SECRET, body)), [META_SECRET])
    assert fallback.event_type == "meta.received"


def _whatsapp(*values: dict, field: str = "messages") -> dict:
    changes = [{"field": field, "value": value} for value in values]
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}


@pytest.mark.parametrize(
    ("body", "event_type"),
    [
        (_whatsapp({"messages": [{"id": "wamid.1", "type": "text"}]}), "meta.whatsapp.messages"),
        (_whatsapp({"statuses": [{"id": "wamid.1", "status": "delivered"}]}), "meta.whatsapp.statuses"),
        (_whatsapp({"errors": [{"code": 131000, "title": "Something went wrong"}]}), "meta.whatsapp.errors"),
        (
            _whatsapp({"event": "APPROVED"}, field="message_template_status_update"),
            "meta.whatsapp.message_template_status_update",
        ),
        (_whatsapp({"messages": [{"id": "m"}]}, {"statuses": [{"id": "s"}]}), "meta.whatsapp.mixed"),
        ({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, "meta.whatsapp"),
        ({"object": "page", "entry": [{"changes": [{"field": "feed", "value": {}}]}]}, "meta.page.feed"),
        ({"object": "instagram", "entry": "nonsense"}, "meta.instagram"),
        ({"entry": []}, "meta.received"),
    ],
)
def test_meta_event_types_tell_messages_statuses_and_errors_apart(body, event_type):
    raw = json.dumps(body)
    assert verify("meta", request(raw, meta_headers(META_SECRET, raw)), [META_SECRET]).event_type == event_type


META_GOOD = request(META_BODY, meta_headers(META_SECRET))
META_REFUSALS = [
    refusal(
        "meta-tampered",
        "meta",
        request(META_BODY.replace("messages", "statuses"), META_GOOD.headers),
        [META_SECRET],
        options=META_OPTIONS,
    ),
    refusal("meta-wrong-secret", "meta", META_GOOD, ["old"], options=META_OPTIONS),
    refusal(
        "meta-missing",
        "meta",
        request(META_BODY),
        [META_SECRET],
        "missing X-Hub-Signature-256 header",
        options=META_OPTIONS,
    ),
]


META_SUBSCRIBE = {
    "hub.mode": "subscribe",
    "hub.verify_token": "my-verify-token",
    "hub.challenge": "1158201444",
}


def test_meta_handshake_answers_the_challenge():
    assert meta_handshake(META_SUBSCRIBE, META_OPTIONS) == "1158201444"
    assert meta_handshake(MultiDict(META_SUBSCRIBE), META_OPTIONS) == "1158201444"
    assert PROVIDERS["meta"].handshake(META_SUBSCRIBE, META_OPTIONS) == Reply("1158201444", "text/plain")


@pytest.mark.parametrize(
    ("query", "options"),
    [
        pytest.param({**META_SUBSCRIBE, "hub.verify_token": "guess"}, META_OPTIONS, id="wrong-token"),
        pytest.param({**META_SUBSCRIBE, "hub.mode": "unsubscribe"}, META_OPTIONS, id="not-subscribe"),
        pytest.param(
            {k: v for k, v in META_SUBSCRIBE.items() if k != "hub.challenge"}, META_OPTIONS, id="no-challenge"
        ),
        pytest.param({k: v for k, v in META_SUBSCRIBE.items() if k != "hub.verify_token"}, META_OPTIONS, id="no-token"),
        pytest.param(META_SUBSCRIBE, {}, id="source-without-token"),
        pytest.param({**META_SUBSCRIBE, "hub.verify_token": ""}, {"verify_token": ""}, id="empty-tokens"),
    ],
)
def test_meta_handshake_refusals(query, options):
    assert meta_handshake(query, options) is None
    with pytest.raises(VerificationError, match="hub.verify_token does not match"):
        PROVIDERS["meta"].handshake(query, options)


# --- none ------------------------------------------------------------------------------------


def test_none_accepts_without_secret_and_reads_ids():
    body = '{"type": "build/finished"}'
    result = verify("none", request(body, {"Idempotency-Key": "k-1"}), [])
    assert result == Verified("k-1", "build.finished", "none")
    result = verify("none", request(body, {"webhook-id": "msg_9"}), [])
    assert result.dedup_key == "msg_9"
    result = verify("none", request(b"not json"), [])
    assert result == Verified(None, "webhook.received", "none")


def test_overlong_provider_ids_are_hashed_to_a_bounded_key():
    key = "k" * 1000
    result = verify("none", request(b"{}", {"Idempotency-Key": key}), [])
    assert result.dedup_key == "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def test_multidict_proxy_headers_work_too():
    from multidict import CIMultiDictProxy

    body = '{"type": "a"}'
    sig = hmac_sha256("s", body.encode()).hex()
    req = InboundRequest(
        method="POST",
        url="https://h/x",
        headers=CIMultiDictProxy(CIMultiDict({"x-webhook-signature": sig})),
        body=body.encode(),
        media_type="application/json",
        json=json.loads(body),
        now=NOW,
    )
    assert verify("hmac", req, ["s"]).event_type == "a"


# --- every provider: rotation, refusals, timestamps -------------------------------------------


#: A request signed with the right secret, the source's secrets (an old one first), what it verifies to.
ROTATIONS = {
    "hmac": (HMAC_GOOD, ["old", "new"], {}, Verified("dlv_1", "user.created", "hmac-sha256-hex")),
    "github": (
        GH_GOOD,
        ["old", "new"],
        {},
        Verified("72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request.opened", "github-sha256"),
    ),
    "twilio": (
        TW_GOOD,
        [TW_OTHER, TW_TOKEN],
        {},
        Verified("SM1234567890abcdef1234567890abcd", "twilio.message", "twilio-hmac-sha1"),
    ),
    "mailgun": (
        request(json.dumps(MG_SIGNED)),
        ["old", MG_KEY],
        {},
        Verified(MG_TOKEN, "mailgun.delivered", "mailgun-hmac-sha256"),
    ),
    "slack": (
        request(SLACK_EVENT, SLACK_GOOD),
        ["old-secret", SLACK_SECRET],
        {},
        Verified("Ev0PV52K21", "event_callback.message", "slack-v0"),
    ),
    "shopify": (
        request(SHOP_BODY, SHOP_GOOD),
        ["old", SHOP_SECRET],
        {},
        Verified("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders.create", "shopify-hmac-sha256"),
    ),
    "meta": (
        META_GOOD,
        ["old", META_SECRET],
        META_OPTIONS,
        Verified(hashlib.sha256(META_BODY.encode()).hexdigest(), "meta.whatsapp.messages", "meta-sha256"),
    ),
}


@pytest.mark.parametrize("name", sorted(ROTATIONS))
def test_rotation_any_active_secret_verifies(name):
    req, secrets, options, expected = ROTATIONS[name]
    assert verify(name, req, secrets, options) == expected


RIGHT_SECRETS = {
    "hmac": ["new"],
    "standard_webhooks": [SW_SECRET],
    "stripe": [STRIPE_SECRET],
    "github": ["new"],
    "twilio": [TW_TOKEN],
    "mailgun": [MG_KEY],
    "slack": [SLACK_SECRET],
    "shopify": [SHOP_SECRET],
    "meta": [META_SECRET],
}


@pytest.mark.parametrize(
    ("name", "req", "secrets", "options", "reason"),
    [
        *HMAC_REFUSALS,
        *SW_REFUSALS,
        *STRIPE_REFUSALS,
        *GH_REFUSALS,
        *TW_REFUSALS,
        *MG_REFUSALS,
        *SLACK_REFUSALS,
        *SHOP_REFUSALS,
        *META_REFUSALS,
    ],
)
def test_each_provider_refuses_a_tampered_wrongly_signed_or_unsigned_request(name, req, secrets, options, reason):
    assert refused(name, req, RIGHT_SECRETS[name] if secrets is None else secrets, options) == reason


#: Timestamped schemes: (request signed at a timestamp, the right secrets, its dedup key).
TIMESTAMPED = {
    "standard_webhooks": (lambda ts: request(SW_BODY, sw_headers(SW_SECRET, ts)), [SW_SECRET], "msg_abc"),
    "stripe": (
        lambda ts: request(STRIPE_BODY, {"Stripe-Signature": stripe_header(STRIPE_SECRET, ts)}),
        [STRIPE_SECRET],
        "evt_1PqR2sT",
    ),
    "mailgun": (lambda ts: request(mailgun_json(MG_KEY, ts)), [MG_KEY], MG_TOKEN),
    "slack": (
        lambda ts: request(SLACK_EVENT, slack_headers(SLACK_SECRET, ts, SLACK_EVENT)),
        [SLACK_SECRET],
        "Ev0PV52K21",
    ),
}


@pytest.mark.parametrize("name", sorted(TIMESTAMPED))
@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (-TOLERANCE - 1, "timestamp too old"),
        (TOLERANCE + 1, "timestamp in the future"),
        (-TOLERANCE, None),
        (TOLERANCE, None),
    ],
)
def test_timestamp_tolerance(name, offset, reason):
    build, secrets, dedup = TIMESTAMPED[name]
    req = build(NOW + offset)
    if reason is None:
        assert verify(name, req, secrets).dedup_key == dedup
    else:
        assert refused(name, req, secrets) == reason


# --- cost: no request costs more than a valid one ---------------------------------------------
# A source URL is not a secret, so anyone may send a hostile request. The verifiers are shown
# computing each (secret, signed string) MAC once, whatever the request presents: these tests
# count the HMACs computed (deterministic); bench/edge_cpu_bench.py measures the CPU time.


@pytest.fixture
def macs(monkeypatch) -> list[bytes]:
    """The key of every HMAC computed while the test runs, in order (clear it after signing)."""
    computed: list[bytes] = []
    real = hmac.new

    def counting(key, msg=None, digestmod=""):
        computed.append(bytes(key))
        return real(key, msg, digestmod)

    monkeypatch.setattr(hmac, "new", counting)
    return computed


def well_sized_wrong(encoding: str, size: int = 32) -> str:
    wrong = bytes(range(size))
    return wrong.hex() if encoding == "hex" else base64.b64encode(wrong).decode()


HOSTILE_ENTRIES = 2_000  # more than fit a header line: the verifiers read only the first few


def hostile_cases() -> list[tuple[str, InboundRequest, list[str], dict]]:
    """(provider, request, secrets, options): the worst request of each scheme, signed wrong."""
    b64, hexed = well_sized_wrong("base64"), well_sized_wrong("hex")
    sw = {
        **sw_headers(SW_SECRET, NOW),
        "webhook-signature": " ".join(
            ["v1,", "v1=", f"v1,{b64[:-4]}", "v2,x"] * (HOSTILE_ENTRIES // 4) + [f"v1,{b64}"] * 20
        ),
    }
    stripe_value = ",".join([f"t={NOW}"] + ["v1=", "v1", f"v1={hexed[:10]}"] * HOSTILE_ENTRIES)
    mailgun = json.loads(mailgun_json(MG_KEY, NOW, token="t" * 100_000))
    repeated = [*TW_INBOUND, *[("Tag", "same")] * 100]
    slack = {**slack_headers("x", NOW, "."), "X-Slack-Signature": "v0=" + hexed}
    meta = {"X-Hub-Signature-256": "sha256=" + hexed * 2}
    return [
        ("hmac", request(HMAC_BODY, {"X-Webhook-Signature": "ab" * 4000}), ["a", "b"], {}),
        ("standard_webhooks", request(SW_BODY, sw), [SW_OTHER, SW_SECRET], {}),
        ("stripe", request(STRIPE_BODY, {"Stripe-Signature": stripe_value}), ["a", "b"], {}),
        ("github", request(GH_BODY, {"X-Hub-Signature-256": "sha256=" + hexed}), ["a"], {}),
        ("twilio", form_request(repeated, {"X-Twilio-Signature": b64[:28]}, url=TW_URL), ["a"], {}),
        ("mailgun", request(json.dumps(mailgun)), [MG_KEY], {}),
        ("slack", request(SLACK_EVENT, slack), ["a"], {}),
        ("shopify", request(SHOP_BODY, {"X-Shopify-Hmac-Sha256": b64}), ["a", "b", "c"], {}),
        ("meta", request(META_BODY, meta), ["a"], META_OPTIONS),
    ]


@pytest.mark.parametrize(
    ("name", "req", "secrets", "options"),
    hostile_cases(),
    ids=[case[0] for case in hostile_cases()],
)
def test_a_hostile_request_costs_at_most_one_mac_per_secret_and_signed_string(macs, name, req, secrets, options):
    assert refused(name, req, secrets, options) in {
        "no signature matches",
        "malformed Mailgun token",
        "no v1 signature in Stripe-Signature header",
    }
    signed_strings = 3 if name == "twilio" else 1  # Twilio: the URL with and without its port
    assert len(macs) <= len(secrets) * signed_strings
    assert macs == sorted(macs, key=[s.encode() for s in secrets].index)  # each secret in turn


def test_a_valid_request_computes_every_secrets_mac_once_without_early_exit(macs):
    # The first secret matches; the second is hashed all the same, so refusals cost no more.
    req = request(HMAC_BODY, {"X-Webhook-Signature": hmac_sha256("s1", HMAC_BODY).hex()})
    macs.clear()
    assert verify("hmac", req, ["s1", "s2"]).dedup_key == "dlv_1"
    assert macs == [b"s1", b"s2"]


def test_empty_and_wrongly_sized_candidates_are_dropped_before_any_hashing(macs):
    sw = {**sw_headers(SW_SECRET, NOW), "webhook-signature": "v1, v1,, v1,AAAA v1=" + "A" * 44}
    macs.clear()
    assert refused("standard_webhooks", request(SW_BODY, sw), [SW_SECRET]) == "no signature matches"
    stripe_value = f"t={NOW},v1=,v1=abcd,v1={'0' * 66}"
    stripe_req = request(STRIPE_BODY, {"Stripe-Signature": stripe_value})
    reason = refused("stripe", stripe_req, [STRIPE_SECRET])
    assert reason == "no v1 signature in Stripe-Signature header"
    for value in ("00" * 31, "00" * 33, "00 " * 20 + "0000"):
        short = request(HMAC_BODY, {"X-Webhook-Signature": value})
        assert refused("hmac", short, ["s1"]) == "no signature matches"
    assert macs == []


def test_signature_entries_past_the_cap_are_not_read():
    good = sw_headers(SW_SECRET, NOW)
    junk = [f"v1,{well_sized_wrong('base64')}"] * (MAX_SIGNATURE_ENTRIES - 1)
    last_read = {**good, "webhook-signature": " ".join([*junk, good["webhook-signature"]])}
    assert verify("standard_webhooks", request(SW_BODY, last_read), [SW_SECRET])
    past = {**good, "webhook-signature": " ".join([*junk, "v1,", good["webhook-signature"]])}
    reason = refused("standard_webhooks", request(SW_BODY, past), [SW_SECRET])
    assert reason == "no signature matches"
    t_part, v1_part = stripe_header(STRIPE_SECRET, NOW).split(",")
    late = ",".join([t_part, *["v0=00"] * (MAX_SIGNATURE_ENTRIES - 1), v1_part])
    assert refused("stripe", request(STRIPE_BODY, {"Stripe-Signature": late}), [STRIPE_SECRET]) == (
        "no v1 signature in Stripe-Signature header"
    )


def test_twilio_tries_two_signed_strings_or_three_with_repeated_values(macs):
    repeated = [*TW_INBOUND, ("Tag", "a"), ("Tag", "a")]
    for fields, tried in ((TW_INBOUND, 2), (repeated, 3)):
        sig = tw_sig(TW_TOKEN, TW_URL, fields)
        req = form_request(fields, {"X-Twilio-Signature": sig}, url=TW_URL)
        macs.clear()
        assert verify("twilio", req, [TW_TOKEN])
        # The URL as given and with :443 (as RequestValidator does), and with repeated values
        # also every value kept (as Twilio's docs say).
        assert len(macs) == tried


def test_twilio_form_field_count_is_capped_before_sorting(macs):
    at_cap = [(f"F{i:04}", "v") for i in range(MAX_FORM_FIELDS)]
    sig = tw_sig(TW_TOKEN, TW_URL, at_cap)
    macs.clear()
    fits = form_request(at_cap, {"X-Twilio-Signature": sig}, url=TW_URL)
    assert verify("twilio", fits, [TW_TOKEN])
    for over in (at_cap + [("F0000", "w")], [(f"G{i}", "v") for i in range(MAX_FORM_FIELDS * 40)]):
        req = form_request(over, {"X-Twilio-Signature": sig}, url=TW_URL)
        assert refused("twilio", req, [TW_TOKEN]) == f"more than {MAX_FORM_FIELDS} form fields"
    assert len(macs) == 2


def test_twilio_finds_body_sha256_among_thousands_of_query_fields():
    body = '{"MessageSid": "SM1"}'
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"https://hooks.example.com/in/src_tw?bodySHA256=&{'a=1&' * 1500}bodySHA256={digest}"
    req = request(body, {"X-Twilio-Signature": tw_sig(TW_TOKEN, url, [])}, url=url)
    assert verify("twilio", req, [TW_TOKEN]).signature_scheme == "twilio-hmac-sha1"
    assert RequestValidator(TW_TOKEN).validate(url, body, tw_sig(TW_TOKEN, url, []))


def test_a_long_mailgun_token_is_refused_unhashed(macs):
    fits = request(mailgun_json(MG_KEY, NOW, token="t" * MAILGUN_TOKEN_MAX))
    long = request(mailgun_json(MG_KEY, NOW, token="t" * (MAILGUN_TOKEN_MAX + 1)))
    macs.clear()
    assert verify("mailgun", fits, [MG_KEY]).dedup_key == "t" * MAILGUN_TOKEN_MAX
    assert len(macs) == 1
    assert refused("mailgun", long, [MG_KEY]) == "malformed Mailgun token"
    assert len(macs) == 1


def test_a_wrongly_sized_ping_signature_is_refused_unhashed(macs):
    from hookyard_ingest.monitors.ping_auth import mac_ok as signature_ok

    body = b'{"status": "up"}' * 600
    good = hmac.new(b"ping-secret", body, hashlib.sha256).hexdigest()
    macs.clear()
    assert signature_ok(b"ping-secret", body, "sha256=" + good.upper())
    assert len(macs) == 1
    for presented in (None, "", "sha256=", good[:-1], good + "0", "f" * 8000, "é" * 64):
        assert not signature_ok(b"ping-secret", body, presented)
    assert len(macs) == 2  # only the well-sized "é" * 64 was hashed
