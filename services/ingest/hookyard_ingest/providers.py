"""Verification of inbound provider webhooks: pure logic, no I/O.

Each provider checks a request's signature the way the provider documents it,
then names the delivery (`dedup_key`) and its type (`event_type`). The HTTP
layer builds an `InboundRequest`, picks `PROVIDERS[source.provider]` and maps
`VerificationError` to 401 and `OptionsError` to 400 when a source is saved.

Rules shared by every scheme:
- `secrets` may hold several active secrets (rotation); any one may match.
  Empty strings are ignored, since an empty HMAC key is a key anyone knows.
- Digests are compared as bytes with `hmac.compare_digest`, never with `==`.
- Timestamped schemes refuse a timestamp further than `tolerance_seconds` from
  `request.now` in either direction. The signature is checked first, so the
  timestamp reasons are only given for requests signed with a known secret.
- Error messages are short and safe to send back: they never hold a secret or
  an expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

__all__ = [
    "PROVIDERS",
    "InboundRequest",
    "OptionsError",
    "Provider",
    "VerificationError",
    "Verified",
    "meta_handshake",
    "normalize_event_type",
]


class VerificationError(Exception):
    """Signature missing or wrong, or timestamp out of tolerance.

    str(exc) is a short, client-safe reason such as 'missing Stripe-Signature header',
    'no signature matches', 'timestamp too old'. It never includes secrets.
    """


class OptionsError(ValueError):
    """A source's provider options are invalid; str(exc) names the option."""


@dataclass(frozen=True)
class InboundRequest:
    method: str  # "POST", "GET"
    url: str  # public URL the provider called, query string included
    headers: Mapping[str, str]  # case-insensitive (multidict.CIMultiDictProxy in production)
    body: bytes  # raw body, exactly as received
    media_type: str  # lower-case media type without parameters
    json: Any = None  # parsed JSON body when media_type is JSON, else None
    form: Mapping[str, list[str]] | None = None  # parsed form fields, values in order received
    now: float = 0.0  # current time, epoch seconds


@dataclass(frozen=True)
class Verified:
    dedup_key: str | None  # the provider's own id for this delivery; None when there is none
    event_type: str  # dotted segments, see normalize_event_type
    signature_scheme: str  # e.g. "stripe-v1", "hmac-sha256-hex", "none"


# --- event types -----------------------------------------------------------------------------

EVENT_TYPE_MAX = 256
_SEPARATORS = re.compile(r"[\s/:\\.]+")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_\-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def normalize_event_type(raw: str | None, fallback: str) -> str:
    """Turn a provider's type into a valid dotted type, or return `fallback`.

    '/', ':', '\\', '.' and whitespace separate segments ('orders/create' -> 'orders.create');
    any other run of characters outside [A-Za-z0-9_-] becomes '_' inside its segment. Empty
    segments and segments without a letter or digit are dropped; the result is cut to 256
    characters.
    """
    if not isinstance(raw, str):
        return fallback
    segments = []
    for part in _SEPARATORS.split(raw):
        segment = _INVALID_RUN.sub("_", part)
        if _ALNUM.search(segment):
            segments.append(segment)
    result = ".".join(segments)[:EVENT_TYPE_MAX].rstrip(".")
    return result or fallback


# --- shared helpers --------------------------------------------------------------------------

DEDUP_KEY_MAX = 256
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header(request: InboundRequest, name: str) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _require_header(request: InboundRequest, name: str) -> str:
    value = _header(request, name)
    if value is None:
        raise VerificationError(f"missing {name} header")
    return value


def _keys(secrets: Iterable[str]) -> list[bytes]:
    keys = [s.encode("utf-8") for s in secrets if isinstance(s, str) and s]
    if not keys:
        raise VerificationError("source has no secret")
    return keys


def _hmac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _any_match(
    keys: Iterable[bytes], sign: Callable[[bytes], bytes], presented: Iterable[bytes]
) -> bool:
    """True when the signature computed with some key equals some presented signature."""
    candidates = list(presented)
    return any(
        hmac.compare_digest(sign(key), candidate) for key in keys for candidate in candidates
    )


def _unhex(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)  # accepts both cases
    except ValueError:
        return None


def _unbase64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _timestamp(raw: object) -> int:
    """An integer epoch-seconds timestamp, as a header string or a JSON number."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and _TIMESTAMP.fullmatch(raw):
        return int(raw)
    raise VerificationError("invalid timestamp")


def _check_age(timestamp: int, request: InboundRequest, tolerance_seconds: int) -> None:
    if request.now - timestamp > tolerance_seconds:
        raise VerificationError("timestamp too old")
    if timestamp - request.now > tolerance_seconds:
        raise VerificationError("timestamp in the future")


def _json_object(request: InboundRequest) -> Mapping[str, Any]:
    return request.json if isinstance(request.json, Mapping) else {}


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _form_value(request: InboundRequest, name: str) -> str | None:
    if request.form is None:
        return None
    values = request.form.get(name)
    if isinstance(values, str):
        return values or None
    return next((v for v in values or () if v), None)


def _dedup(key: str | None) -> str | None:
    """Keep a provider's id as it is, but bound its length (a hash of it keeps it unique)."""
    if not key:
        return None
    if len(key) > DEDUP_KEY_MAX:
        return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key


def _options_mapping(options: Mapping[str, Any] | None, allowed: Iterable[str]) -> dict:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise OptionsError("options must be an object")
    allowed = set(allowed)
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(unknown)}")
    return dict(options)


# --- providers -------------------------------------------------------------------------------


class Provider:
    """One inbound provider. Subclasses set `name` and implement `verify`."""

    name: str = ""

    def check_options(self, options: dict) -> dict:
        """Validate and normalize a source's options (defaults filled); raise OptionsError."""
        return _options_mapping(options, ())

    def verify(
        self,
        request: InboundRequest,
        secrets: list[str],
        options: dict,
        tolerance_seconds: int,
    ) -> Verified:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Provider {self.name}>"


class HmacProvider(Provider):
    """Generic: HMAC-SHA256 of the raw body, hex (default) or base64, in one header."""

    name = "hmac"
    defaults: ClassVar[Mapping[str, Any]] = {
        "signature_header": "X-Webhook-Signature",
        "signature_prefix": "",
        "encoding": "hex",
        "event_type_field": "type",
        "id_header": None,
    }

    def check_options(self, options: dict) -> dict:
        opts = {**self.defaults, **_options_mapping(options, self.defaults)}
        for key in ("signature_header", "id_header"):
            value = opts[key]
            if key == "id_header" and value is None:
                continue
            if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
                raise OptionsError(f"{key} must be an HTTP header name")
        prefix = opts["signature_prefix"]
        if not isinstance(prefix, str) or len(prefix) > 64 or not prefix.isprintable():
            raise OptionsError("signature_prefix must be a short printable string")
        if opts["encoding"] not in ("hex", "base64"):
            raise OptionsError("encoding must be 'hex' or 'base64'")
        field_name = opts["event_type_field"]
        if not isinstance(field_name, str) or not field_name:
            raise OptionsError("event_type_field must be a non-empty string")
        return opts

    def verify(self, request, secrets, options, tolerance_seconds):
        # Stored options were normalized by check_options when the source was saved.
        opts = {**self.defaults, **options}
        keys = _keys(secrets)
        header = opts["signature_header"]
        value = _require_header(request, header)
        prefix = opts["signature_prefix"]
        if prefix:
            if not value.startswith(prefix):
                raise VerificationError(f"{header} lacks the expected prefix")
            value = value[len(prefix) :]
        elif value.startswith("sha256="):
            value = value[len("sha256=") :]
        decode = _unhex if opts["encoding"] == "hex" else _unbase64
        presented = decode(value)
        if presented is None:
            raise VerificationError(f"malformed {header} header")
        if not _any_match(keys, lambda k: _hmac(k, request.body), [presented]):
            raise VerificationError("no signature matches")

        data = _json_object(request)
        dedup = _header(request, opts["id_header"]) if opts["id_header"] else None
        return Verified(
            dedup_key=_dedup(dedup or _string(data.get("id"))),
            event_type=normalize_event_type(
                _string(data.get(opts["event_type_field"])), "hmac.received"
            ),
            signature_scheme=f"hmac-sha256-{opts['encoding']}",
        )


class StandardWebhooksProvider(Provider):
    """Standard Webhooks (https://www.standardwebhooks.com/, spec 'Verifying webhooks').

    HMAC-SHA256 over '{webhook-id}.{webhook-timestamp}.{body}', keyed with the base64-decoded
    secret (after its 'whsec_' prefix); `webhook-signature` lists 'v1,<base64>' entries
    separated by spaces. Svix sends the same headers named svix-*.
    """

    name = "standard_webhooks"

    @staticmethod
    def _secret_bytes(secrets: list[str]) -> list[bytes]:
        _keys(secrets)  # "source has no secret" when none
        keys = []
        for secret in secrets:
            if not isinstance(secret, str) or not secret:
                continue
            encoded = secret.removeprefix("whsec_")
            key = _unbase64(encoded + "=" * (-len(encoded) % 4))
            if key:
                keys.append(key)
        if not keys:
            raise VerificationError("source secret is not a Standard Webhooks secret")
        return keys

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = self._secret_bytes(secrets)
        family = "webhook"
        if _header(request, "webhook-signature") is None and _header(request, "svix-signature"):
            family = "svix"
        msg_id = _require_header(request, f"{family}-id")
        raw_ts = _require_header(request, f"{family}-timestamp")
        signatures = _require_header(request, f"{family}-signature")
        timestamp = _timestamp(raw_ts)

        presented = []
        for entry in signatures.split():
            version, _, value = entry.partition(",")
            decoded = _unbase64(value) if version == "v1" else None
            if decoded is not None:
                presented.append(decoded)
        signed = f"{msg_id}.{raw_ts}.".encode() + request.body
        if not _any_match(keys, lambda k: _hmac(k, signed), presented):
            raise VerificationError("no signature matches")
        _check_age(timestamp, request, tolerance_seconds)

        data = _json_object(request)
        return Verified(
            dedup_key=_dedup(msg_id),
            event_type=normalize_event_type(
                _string(data.get("type")), "standard_webhooks.received"
            ),
            signature_scheme="standard-webhooks-v1",
        )


class StripeProvider(Provider):
    """Stripe (docs.stripe.com/webhooks, 'Verify signatures manually').

    `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...][,v0=...]`; v1 is HMAC-SHA256 of '{t}.{body}'
    keyed with the endpoint secret as UTF-8 (the 'whsec_...' string itself). v0 is ignored.
    """

    name = "stripe"

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        header = _require_header(request, "Stripe-Signature")
        raw_ts: str | None = None
        presented = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t" and raw_ts is None:
                raw_ts = value
            elif key == "v1":
                decoded = _unhex(value)
                if decoded is not None:
                    presented.append(decoded)
        if raw_ts is None:
            raise VerificationError("no timestamp in Stripe-Signature header")
        timestamp = _timestamp(raw_ts)
        if not presented:
            raise VerificationError("no v1 signature in Stripe-Signature header")
        signed = raw_ts.encode() + b"." + request.body
        if not _any_match(keys, lambda k: _hmac(k, signed), presented):
            raise VerificationError("no signature matches")
        _check_age(timestamp, request, tolerance_seconds)

        data = _json_object(request)
        return Verified(
            dedup_key=_dedup(_string(data.get("id"))),
            event_type=normalize_event_type(_string(data.get("type")), "stripe.received"),
            signature_scheme="stripe-v1",
        )


def _sha256_prefixed_header(request: InboundRequest, keys: list[bytes], name: str) -> None:
    """`<name>: sha256=<hex>` holding HMAC-SHA256 of the raw body (GitHub, Meta)."""
    value = _require_header(request, name)
    scheme, sep, digest = value.partition("=")
    presented = _unhex(digest) if sep and scheme.lower() == "sha256" else None
    if presented is None:
        raise VerificationError(f"malformed {name} header")
    if not _any_match(keys, lambda k: _hmac(k, request.body), [presented]):
        raise VerificationError("no signature matches")


class GitHubProvider(Provider):
    """GitHub (docs.github.com, 'Validating webhook deliveries').

    `X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(secret, body); no timestamp.
    `X-GitHub-Delivery` is a GUID per delivery, kept on redeliveries.
    """

    name = "github"

    def verify(self, request, secrets, options, tolerance_seconds):
        _sha256_prefixed_header(request, _keys(secrets), "X-Hub-Signature-256")
        event = _header(request, "X-GitHub-Event")
        action = _string(_json_object(request).get("action"))
        raw_type = f"{event}.{action}" if event and action else event
        return Verified(
            dedup_key=_dedup(_header(request, "X-GitHub-Delivery")),
            event_type=normalize_event_type(raw_type, "github.received"),
            signature_scheme="github-sha256",
        )


class TwilioProvider(Provider):
    """Twilio (twilio.com/docs/usage/webhooks/webhooks-security).

    `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + each form field's name and
    value, sorted by name, then by value for repeated names)). JSON bodies are not in the
    signed string: the URL carries `bodySHA256`, the body's SHA-256 hex. As Twilio's
    RequestValidator does, the URL is tried as given, without its port, and with the default
    port. Webhooks signed with a SharedKey ('Sign webhooks with shared keys') name their
    algorithm in `X-Twilio-Webhooks-Signature-Settings` (HMAC_SHA1 or HMAC_SHA256).
    """

    name = "twilio"
    _algorithms: ClassVar[Mapping[str, str]] = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}

    @staticmethod
    def _urls(url: str) -> list[str]:
        urls = [url]
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return urls
        if port is not None:
            urls.append(urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])))
        elif parts.scheme in ("http", "https") and parts.netloc:
            default = 443 if parts.scheme == "https" else 80
            urls.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
        return list(dict.fromkeys(urls))

    @staticmethod
    def _params(form: Mapping[str, list[str]]) -> list[str]:
        """The form's part of the signed string; with repeated identical values, both the
        form where each is kept and the one where they are merged (RequestValidator merges)."""
        fields = {k: [v] if isinstance(v, str) else list(v) for k, v in form.items()}
        kept = "".join(k + v for k in sorted(fields) for v in sorted(fields[k]))
        merged = "".join(k + v for k in sorted(fields) for v in sorted(set(fields[k])))
        return list(dict.fromkeys([kept, merged]))

    def _algorithm(self, request: InboundRequest) -> str:
        settings = _header(request, "X-Twilio-Webhooks-Signature-Settings") or ""
        name = "HMAC_SHA1"
        for part in settings.split(","):
            key, sep, value = part.partition("=")
            if sep and key.strip() == "algorithm" and value.strip():
                name = value.strip().upper()
        if name not in self._algorithms:
            raise VerificationError("unsupported signature algorithm")
        return self._algorithms[name]

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        presented = _unbase64(_require_header(request, "X-Twilio-Signature"))
        if presented is None:
            raise VerificationError("malformed X-Twilio-Signature header")
        algorithm = self._algorithm(request)

        body_hash = parse_qs(urlsplit(request.url).query).get("bodySHA256")
        if request.form is not None:
            params = self._params(request.form)
        elif body_hash or not request.body:
            params = [""]
        else:
            raise VerificationError("body is not covered by the signature (no bodySHA256)")
        signed = [(url + p).encode("utf-8") for url in self._urls(request.url) for p in params]
        if not any(
            hmac.compare_digest(_hmac(key, message, algorithm), presented)
            for key in keys
            for message in signed
        ):
            raise VerificationError("no signature matches")
        if request.form is None and body_hash:
            actual = hashlib.sha256(request.body).hexdigest().encode()
            if not hmac.compare_digest(actual, body_hash[0].strip().lower().encode()):
                raise VerificationError("body does not match bodySHA256")

        message_sid = _form_value(request, "MessageSid") or _form_value(request, "SmsSid")
        call_sid = _form_value(request, "CallSid")
        # Inbound messages carry SmsStatus=received; status callbacks carry MessageStatus.
        message_status = _form_value(request, "MessageStatus")
        if message_status is None and (sms := _form_value(request, "SmsStatus")) != "received":
            message_status = sms
        if message_sid and message_status:
            event_type = "twilio.message.status"
        elif message_sid:
            event_type = "twilio.message"
        elif call_sid:
            event_type = "twilio.call"
        else:
            event_type = "twilio.received"
        # The idempotency token names this webhook and is kept on retries. A message's status
        # callbacks share its MessageSid (and a call's webhooks its CallSid), so without the
        # token the status joins the SID to keep each callback distinct.
        dedup = _header(request, "I-Twilio-Idempotency-Token")
        if dedup is None and (sid := message_sid or call_sid):
            status = message_status if message_sid else _form_value(request, "CallStatus")
            dedup = f"{sid}:{status}" if status else sid
        return Verified(
            dedup_key=_dedup(dedup),
            event_type=event_type,
            signature_scheme=f"twilio-hmac-{algorithm}",
        )


class MailgunProvider(Provider):
    """Mailgun (documentation.mailgun.com, 'Securing webhooks').

    signature = hex(HMAC-SHA256(signing key, timestamp + token)). JSON webhooks carry it in
    `signature: {timestamp, token, signature}`; routes/inbound form posts as top-level fields.
    The body itself is not signed: the token (cached here as the dedup key) guards replays.
    """

    name = "mailgun"

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        data = _json_object(request)
        if request.form is not None:
            raw_ts: object = _form_value(request, "timestamp")
            token = _form_value(request, "token")
            signature = _form_value(request, "signature")
            event_type = "mailgun.inbound"
        else:
            block = data.get("signature")
            block = block if isinstance(block, Mapping) else {}
            raw_ts = block.get("timestamp")
            token = _string(block.get("token"))
            signature = _string(block.get("signature"))
            event_data = data.get("event-data")
            event = event_data.get("event") if isinstance(event_data, Mapping) else None
            event_type = normalize_event_type(
                f"mailgun.{event}" if _string(event) else None, "mailgun.received"
            )
        if raw_ts is None or token is None or signature is None:
            raise VerificationError("missing Mailgun signature fields")
        timestamp = _timestamp(raw_ts)
        presented = _unhex(signature)
        if presented is None:
            raise VerificationError("malformed Mailgun signature")
        signed = f"{raw_ts}{token}".encode()
        if not _any_match(keys, lambda k: _hmac(k, signed), [presented]):
            raise VerificationError("no signature matches")
        _check_age(timestamp, request, tolerance_seconds)
        return Verified(
            dedup_key=_dedup(token),
            event_type=event_type,
            signature_scheme="mailgun-hmac-sha256",
        )


class SlackProvider(Provider):
    """Slack (docs.slack.dev/authentication/verifying-requests-from-slack).

    `X-Slack-Signature: v0=<hex>` of HMAC-SHA256(signing secret,
    'v0:{X-Slack-Request-Timestamp}:{body}').
    """

    name = "slack"

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        header = _require_header(request, "X-Slack-Signature")
        raw_ts = _require_header(request, "X-Slack-Request-Timestamp")
        timestamp = _timestamp(raw_ts)
        version, sep, digest = header.partition("=")
        presented = _unhex(digest) if sep and version == "v0" else None
        if presented is None:
            raise VerificationError("malformed X-Slack-Signature header")
        signed = f"v0:{raw_ts}:".encode() + request.body
        if not _any_match(keys, lambda k: _hmac(k, signed), [presented]):
            raise VerificationError("no signature matches")
        _check_age(timestamp, request, tolerance_seconds)

        data = _json_object(request)
        dedup = _string(data.get("event_id")) or _string(data.get("trigger_id"))
        kind = _string(data.get("type"))
        if kind == "event_callback":
            event = data.get("event")
            inner = _string(event.get("type")) if isinstance(event, Mapping) else None
            raw_type = f"{kind}.{inner}" if inner else kind
        elif kind:
            raw_type = kind
        elif _form_value(request, "command"):
            raw_type = "slack.command"
            dedup = _form_value(request, "trigger_id")
        elif payload := _form_value(request, "payload"):
            raw_type = "slack.interaction"
            dedup = self._payload_trigger_id(payload)
        else:
            raw_type = None
        return Verified(
            dedup_key=_dedup(dedup),
            event_type=normalize_event_type(raw_type, "slack.received"),
            signature_scheme="slack-v0",
        )

    @staticmethod
    def _payload_trigger_id(payload: str) -> str | None:
        try:
            parsed = json.loads(payload)
        except ValueError:
            return None
        return _string(parsed.get("trigger_id")) if isinstance(parsed, dict) else None


class ShopifyProvider(Provider):
    """Shopify (shopify.dev/docs/apps/build/webhooks, 'Verify webhooks').

    `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(app client secret, body)).
    """

    name = "shopify"

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        presented = _unbase64(_require_header(request, "X-Shopify-Hmac-Sha256"))
        if presented is None:
            raise VerificationError("malformed X-Shopify-Hmac-Sha256 header")
        if not _any_match(keys, lambda k: _hmac(k, request.body), [presented]):
            raise VerificationError("no signature matches")
        dedup = _header(request, "X-Shopify-Webhook-Id") or _header(request, "X-Shopify-Event-Id")
        return Verified(
            dedup_key=_dedup(dedup),
            event_type=normalize_event_type(
                _header(request, "X-Shopify-Topic"), "shopify.received"
            ),
            signature_scheme="shopify-hmac-sha256",
        )


class MetaProvider(Provider):
    """Meta: WhatsApp Cloud API / Messenger / Instagram (developers.facebook.com, Webhooks,
    'Validate payloads'): `X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(app secret, body).
    The GET subscription handshake uses the `verify_token` option: see meta_handshake."""

    name = "meta"

    def check_options(self, options: dict) -> dict:
        opts = _options_mapping(options, ("verify_token",))
        token = opts.get("verify_token")
        if not isinstance(token, str) or not token:
            raise OptionsError("verify_token is required (a non-empty string)")
        return {"verify_token": token}

    def verify(self, request, secrets, options, tolerance_seconds):
        _sha256_prefixed_header(request, _keys(secrets), "X-Hub-Signature-256")
        obj = _string(_json_object(request).get("object"))
        return Verified(
            # Meta sends no delivery id; a retry resends the same bytes.
            dedup_key=hashlib.sha256(request.body).hexdigest(),
            event_type=normalize_event_type(f"meta.{obj}" if obj else None, "meta.received"),
            signature_scheme="meta-sha256",
        )


class NoneProvider(Provider):
    """No verification: for senders that cannot sign (use only behind another safeguard)."""

    name = "none"

    def verify(self, request, secrets, options, tolerance_seconds):
        dedup = _header(request, "Idempotency-Key") or _header(request, "webhook-id")
        return Verified(
            dedup_key=_dedup(dedup),
            event_type=normalize_event_type(
                _string(_json_object(request).get("type")), "webhook.received"
            ),
            signature_scheme="none",
        )


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        HmacProvider(),
        StandardWebhooksProvider(),
        StripeProvider(),
        GitHubProvider(),
        TwilioProvider(),
        MailgunProvider(),
        SlackProvider(),
        ShopifyProvider(),
        MetaProvider(),
        NoneProvider(),
    )
}


def meta_handshake(query: Mapping[str, str], options: dict) -> str | None:
    """Meta's GET verification request (developers.facebook.com, Webhooks, 'Verification
    Requests'): when hub.mode is 'subscribe' and hub.verify_token equals the source's
    verify_token (constant-time compare), return hub.challenge; otherwise None (answer 403)."""
    expected = options.get("verify_token") if isinstance(options, Mapping) else None
    token = query.get("hub.verify_token")
    challenge = query.get("hub.challenge")
    if query.get("hub.mode") != "subscribe" or not challenge:
        return None
    if not isinstance(expected, str) or not expected or not isinstance(token, str):
        return None
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        return None
    return challenge
