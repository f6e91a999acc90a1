"""Verification of inbound provider webhooks: pure logic, no I/O.

Each provider checks a request's signature the way the provider documents it,
then names the delivery (`dedup_key`) and its type (`event_type`). The HTTP
layer builds an `InboundRequest`, picks `PROVIDERS[source.provider]` and maps
`VerificationError` to 401 and `OptionsError` to 400 when a source is saved.

Rules shared by every scheme:
- `secrets` may hold several active secrets (rotation); any one may match.
  Empty strings are ignored, since an empty HMAC key is a key anyone knows.
- Digests are compared as bytes with `hmac.compare_digest`, never with `==`.
- No request costs more than a valid one (a source URL is not a secret, so anyone can
  send): each secret's MAC of each signed string is computed once, with no early exit,
  then compared with every presented candidate. Candidates are read from at most
  MAX_SIGNATURE_ENTRIES header entries, and an empty or wrongly sized one is dropped before
  any hashing. Everything else that grows with the input (Twilio's form fields, Mailgun's
  token) is capped; `bench/edge_cpu_bench.py` measures the worst request of each scheme.
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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from hookyard_common.delivery.header_rules import HEADER_NAME_PATTERN

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
_BODY_SHA256 = re.compile(r"(?:^|&)bodySHA256=([^&]+)")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
SHA256_SIZE = 32
SHA1_SIZE = 20
#: Entries read from a header that lists signatures (Standard Webhooks, Svix, Stripe) or
#: settings (Twilio): senders send one per active secret, a handful at most, so the rest of
#: a longer header is ignored unread. Bounds the work a hostile header can cause.
MAX_SIGNATURE_ENTRIES = 10
#: Form fields (values, repeats included) a Twilio signature is checked over; Twilio sends a
#: few dozen. Bounds the sorting and joining that a form of tiny fields could cost.
MAX_FORM_FIELDS = 256
#: Longest Mailgun token signed (Mailgun's are 50 characters): the rest of Mailgun's signed
#: string is a timestamp, so a long token is the only way to make its HMAC cost anything.
MAILGUN_TOKEN_MAX = 256


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


def _mac(key: bytes, parts: Iterable[bytes], algorithm: str = "sha256") -> bytes:
    """HMAC of the parts' concatenation, fed in pieces so a large body is never copied."""
    mac = hmac.new(key, digestmod=algorithm)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _check_macs(
    keys: Iterable[bytes],
    messages: Sequence[tuple[bytes, ...]],
    presented: Collection[bytes],
    algorithm: str = "sha256",
) -> None:
    """Refuse unless some key's MAC of some signed message equals some presented candidate.

    Each (key, message) MAC is computed once, then compared in constant time with every
    candidate, and no loop stops at the first match: a request costs the same whether it
    verifies or not, however many candidates it presents (they are capped and well sized).
    """
    if not presented:  # nothing well formed to compare with: no hashing at all
        raise VerificationError("no signature matches")
    found = False
    for key in keys:
        for message in messages:
            expected = _mac(key, message, algorithm)
            for candidate in presented:
                found |= hmac.compare_digest(expected, candidate)
    if not found:
        raise VerificationError("no signature matches")


def _digest(value: str, encoding: str, size: int = SHA256_SIZE) -> bytes | None:
    """A presented digest of `size` bytes, or None when `value` cannot be one.

    The length is checked before decoding, and the decoded length after (`bytes.fromhex`
    skips spaces), so a huge or truncated value costs no decoding and no hashing.
    """
    length = 2 * size if encoding == "hex" else 4 * -(-size // 3)
    if len(value) != length:
        return None
    decoded = _decode(value, encoding)
    return decoded if decoded is not None and len(decoded) == size else None


def _decode(value: str, encoding: str) -> bytes | None:
    return _unhex(value) if encoding == "hex" else _unbase64(value)


def _one_digest(value: str, encoding: str, header: str, size: int = SHA256_SIZE) -> list[bytes]:
    """The one digest a single-signature header holds, as a list of candidates: empty when
    it is wrongly sized (no hashing, then 'no signature matches'); malformed when undecodable."""
    digest = _digest(value, encoding, size)
    if digest is not None:
        return [digest]
    if _decode(value, encoding) is None:
        raise VerificationError(f"malformed {header} header")
    return []


def _entries(value: str, separator: str | None) -> list[str]:
    """The first MAX_SIGNATURE_ENTRIES entries of a header; the rest is never split."""
    return value.split(separator, MAX_SIGNATURE_ENTRIES)[:MAX_SIGNATURE_ENTRIES]


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
        presented = _one_digest(value, opts["encoding"], header)
        _check_macs(keys, [(request.body,)], presented)

        data = _json_object(request)
        dedup = _header(request, opts["id_header"]) if opts["id_header"] else None
        return Verified(
            dedup_key=_dedup(dedup or _string(data.get("id"))),
            event_type=normalize_event_type(_string(data.get(opts["event_type_field"])), "hmac.received"),
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
        for entry in _entries(signatures, None):
            version, _, value = entry.partition(",")
            if version == "v1" and (digest := _digest(value, "base64")) is not None:
                presented.append(digest)
        _check_macs(keys, [(f"{msg_id}.{raw_ts}.".encode(), request.body)], presented)
        _check_age(timestamp, request, tolerance_seconds)

        data = _json_object(request)
        return Verified(
            dedup_key=_dedup(msg_id),
            event_type=normalize_event_type(_string(data.get("type")), "standard_webhooks.received"),
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
        for item in _entries(header, ","):
            key, _, value = item.strip().partition("=")
            if key == "t" and raw_ts is None:
                raw_ts = value
            elif key == "v1" and (digest := _digest(value, "hex")) is not None:
                presented.append(digest)
        if raw_ts is None:
            raise VerificationError("no timestamp in Stripe-Signature header")
        timestamp = _timestamp(raw_ts)
        if not presented:
            raise VerificationError("no v1 signature in Stripe-Signature header")
        _check_macs(keys, [(raw_ts.encode(), b".", request.body)], presented)
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
    if not sep or scheme.lower() != "sha256":
        raise VerificationError(f"malformed {name} header")
    _check_macs(keys, [(request.body,)], _one_digest(digest, "hex", name))


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
    def _params(form: Mapping[str, list[str]]) -> tuple[bytes, bytes]:
        """The form's part of the signed string, (merged, kept): RequestValidator merges
        repeated identical values (sorted(set(values))), Twilio's docs keep each one."""
        if len(form) > MAX_FORM_FIELDS:
            raise VerificationError(f"more than {MAX_FORM_FIELDS} form fields")
        fields = {k: [v] if isinstance(v, str) else list(v) for k, v in form.items()}
        if sum(map(len, fields.values())) > MAX_FORM_FIELDS:
            raise VerificationError(f"more than {MAX_FORM_FIELDS} form fields")
        names = sorted(fields)
        kept = "".join(k + v for k in names for v in sorted(fields[k])).encode()
        if all(len(set(values)) == len(values) for values in fields.values()):
            return kept, kept
        return "".join(k + v for k in names for v in sorted(set(fields[k]))).encode(), kept

    def _messages(self, request: InboundRequest) -> list[tuple[bytes, ...]]:
        """The signed strings to try: the SDK's (merged fields) with the URL as given and with
        or without its port, and the docs' (every field kept) with the URL as given. At most
        three, against two for every request: a form with repeats costs at most 1.5 times."""
        if request.form is not None:
            merged, kept = self._params(request.form)
        elif self._body_hash(request) is not None or not request.body:
            merged = kept = b""
        else:
            raise VerificationError("body is not covered by the signature (no bodySHA256)")
        messages = [(url.encode(), merged) for url in self._urls(request.url)]
        if kept != merged:
            messages.append((request.url.encode(), kept))
        return messages

    @staticmethod
    def _body_hash(request: InboundRequest) -> str | None:
        """The URL's first `bodySHA256` value, found without splitting the whole query."""
        found = _BODY_SHA256.search(urlsplit(request.url).query)
        return unquote(found[1]) if found else None

    def _algorithm(self, request: InboundRequest) -> str:
        settings = _header(request, "X-Twilio-Webhooks-Signature-Settings") or ""
        name = "HMAC_SHA1"
        for part in _entries(settings, ","):
            key, sep, value = part.partition("=")
            if sep and key.strip() == "algorithm" and value.strip():
                name = value.strip().upper()
        if name not in self._algorithms:
            raise VerificationError("unsupported signature algorithm")
        return self._algorithms[name]

    def verify(self, request, secrets, options, tolerance_seconds):
        keys = _keys(secrets)
        header = _require_header(request, "X-Twilio-Signature")
        algorithm = self._algorithm(request)
        size = SHA1_SIZE if algorithm == "sha1" else SHA256_SIZE
        presented = _one_digest(header, "base64", "X-Twilio-Signature", size)
        _check_macs(keys, self._messages(request), presented, algorithm)
        body_hash = self._body_hash(request) if request.form is None else None
        if body_hash is not None:
            actual = hashlib.sha256(request.body).hexdigest().encode()
            if not hmac.compare_digest(actual, body_hash.strip().lower().encode()):
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
            event_type = normalize_event_type(f"mailgun.{event}" if _string(event) else None, "mailgun.received")
        if raw_ts is None or token is None or signature is None:
            raise VerificationError("missing Mailgun signature fields")
        timestamp = _timestamp(raw_ts)
        presented = _digest(signature, "hex")
        if presented is None:
            raise VerificationError("malformed Mailgun signature")
        if len(token) > MAILGUN_TOKEN_MAX:  # the signed string is tiny, unless the token is not
            raise VerificationError("malformed Mailgun token")
        _check_macs(keys, [(f"{raw_ts}{token}".encode(),)], [presented])
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
        if not sep or version != "v0":
            raise VerificationError("malformed X-Slack-Signature header")
        presented = _one_digest(digest, "hex", "X-Slack-Signature")
        _check_macs(keys, [(f"v0:{raw_ts}:".encode(), request.body)], presented)
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
        header = _require_header(request, "X-Shopify-Hmac-Sha256")
        presented = _one_digest(header, "base64", "X-Shopify-Hmac-Sha256")
        _check_macs(keys, [(request.body,)], presented)
        dedup = _header(request, "X-Shopify-Webhook-Id") or _header(request, "X-Shopify-Event-Id")
        return Verified(
            dedup_key=_dedup(dedup),
            event_type=normalize_event_type(_header(request, "X-Shopify-Topic"), "shopify.received"),
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
            event_type=normalize_event_type(_string(_json_object(request).get("type")), "webhook.received"),
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
