"""`twilio`: Twilio (twilio.com/docs/usage/webhooks/webhooks-security).

`X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + each form field's name and
value, sorted by name, then by value for repeated names)). JSON bodies are not in the
signed string: the URL carries `bodySHA256`, the body's SHA-256 hex. As Twilio's
RequestValidator does, the URL is tried as given, without its port, and with the default
port. Webhooks signed with a SharedKey ('Sign webhooks with shared keys') name their
algorithm in `X-Twilio-Webhooks-Signature-Settings` (HMAC_SHA1 or HMAC_SHA256).
Twilio reads the answer as TwiML, so an accepted delivery is answered with an empty one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from hookyard_ingest.receiving.providers import signatures
from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    Provider,
    Reply,
    VerificationError,
    Verified,
)
from hookyard_ingest.receiving.providers.event_naming import dedup_key

#: Form fields (values, repeats included) a Twilio signature is checked over; Twilio sends a
#: few dozen. Bounds the sorting and joining that a form of tiny fields could cost.
MAX_FORM_FIELDS = 256
_BODY_SHA256 = re.compile(r"(?:^|&)bodySHA256=([^&]+)")
TWIML_EMPTY = Reply('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")


class TwilioProvider(Provider):
    """Twilio: the URL and the sorted form fields, signed with the auth token."""

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
        messages: list[tuple[bytes, ...]] = [(url.encode(), merged) for url in self._urls(request.url)]
        if kept != merged:
            messages.append((request.url.encode(), kept))
        return messages

    @staticmethod
    def _body_hash(request: InboundRequest) -> str | None:
        """The URL's first `bodySHA256` value, found without splitting the whole query."""
        found = _BODY_SHA256.search(urlsplit(request.url).query)
        return unquote(found[1]) if found else None

    def _algorithm(self, request: InboundRequest) -> str:
        settings = request.header("X-Twilio-Webhooks-Signature-Settings") or ""
        name = "HMAC_SHA1"
        for part in signatures.entries(settings, ","):
            key, sep, value = part.partition("=")
            if sep and key.strip() == "algorithm" and value.strip():
                name = value.strip().upper()
        if name not in self._algorithms:
            raise VerificationError("unsupported signature algorithm")
        return self._algorithms[name]

    def verify(self, request: InboundRequest, secrets: list[str], options: dict, tolerance_seconds: int) -> Verified:
        keys = signatures.secret_keys(secrets)
        header = request.require_header("X-Twilio-Signature")
        algorithm = self._algorithm(request)
        size = signatures.SHA1_SIZE if algorithm == "sha1" else signatures.SHA256_SIZE
        presented = signatures.one_digest(header, "base64", "X-Twilio-Signature", size)
        signatures.check_macs(keys, self._messages(request), presented, algorithm)
        body_hash = self._body_hash(request) if request.form is None else None
        if body_hash is not None:
            actual = hashlib.sha256(request.body).hexdigest().encode()
            if not hmac.compare_digest(actual, body_hash.strip().lower().encode()):
                raise VerificationError("body does not match bodySHA256")
        event_type, delivery = self._naming(request)
        return Verified(
            dedup_key=dedup_key(delivery),
            event_type=event_type,
            signature_scheme=f"twilio-hmac-{algorithm}",
        )

    @staticmethod
    def _naming(request: InboundRequest) -> tuple[str, str | None]:
        """The event type and the delivery's id, from the form's SIDs and statuses."""
        message_sid = request.form_value("MessageSid") or request.form_value("SmsSid")
        call_sid = request.form_value("CallSid")
        # Inbound messages carry SmsStatus=received; status callbacks carry MessageStatus.
        message_status = request.form_value("MessageStatus")
        if message_status is None and (sms := request.form_value("SmsStatus")) != "received":
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
        delivery = request.header("I-Twilio-Idempotency-Token")
        if delivery is None and (sid := message_sid or call_sid):
            status = message_status if message_sid else request.form_value("CallStatus")
            delivery = f"{sid}:{status}" if status else sid
        return event_type, delivery

    def accepted_reply(self) -> Reply:
        return TWIML_EMPTY
