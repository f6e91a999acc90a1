"""The provider interface: what the receiving path asks of every provider, and what it gets back.

A provider is pure logic, no I/O. The HTTP layer builds an `InboundRequest`, asks the source's
provider to `verify` it (and, for the few providers that need one, for a handshake, an early
reply or its own accepted reply), and maps `VerificationError` to 401 (403 for a handshake) and
`OptionsError` to 400 when a source is saved. Everything a provider does differently lives in
its own module behind this class; `routes.py` and `sources.py` never ask for a provider by name.

The defaults are what most providers need, so a provider overrides only what it does
differently: a signing provider writes `verify` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


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

    def header(self, name: str) -> str | None:
        """The header's value stripped, or None when it is absent or blank."""
        value = self.headers.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def require_header(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise VerificationError(f"missing {name} header")
        return value

    def json_object(self) -> Mapping[str, Any]:
        """The JSON body when it is an object, else an empty mapping."""
        return self.json if isinstance(self.json, Mapping) else {}

    def form_value(self, name: str) -> str | None:
        """The first non-empty value of a form field."""
        if self.form is None:
            return None
        values = self.form.get(name)
        if isinstance(values, str):
            return values or None
        return next((v for v in values or () if v), None)


@dataclass(frozen=True)
class Verified:
    dedup_key: str | None  # the provider's own id for this delivery; None when there is none
    event_type: str  # dotted segments, see event_naming.normalize_event_type
    signature_scheme: str  # e.g. "stripe-v1", "hmac-sha256-hex", "none"


@dataclass(frozen=True)
class Reply:
    """An answer a provider expects instead of the standard JSON receipt (served as UTF-8 text)."""

    text: str
    content_type: str


def nonempty_string(value: object) -> str | None:
    """A non-empty string found in a payload, else None."""
    return value if isinstance(value, str) and value else None


def option_names(options: Mapping[str, Any] | None, allowed: Iterable[str]) -> dict:
    """The options as a dict, refusing a non-object and naming every unknown option."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise OptionsError("options must be an object")
    allowed = set(allowed)
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(unknown)}")
    return dict(options)


class Provider:
    """One inbound provider. Subclasses set `name` and implement `verify`; the rest is optional."""

    name: ClassVar[str] = ""
    #: Option names a tenant sets that are credentials: stored, shown back as '***'.
    secret_options: ClassVar[frozenset[str]] = frozenset()
    #: False for a provider that does not sign, whose sources may then have no secret.
    needs_secret: ClassVar[bool] = True

    def check_options(self, options: dict) -> dict:
        """Validate and normalize a source's options (defaults filled); raise OptionsError."""
        return option_names(options, ())

    def generated_secrets(self) -> list[str] | None:
        """Secrets for a source created without any; None when the provider issues its own
        (the tenant must then pass it)."""
        return None

    def verify(
        self,
        request: InboundRequest,
        secrets: list[str],
        options: dict,
        tolerance_seconds: int,
    ) -> Verified:
        """Check the request's signature against any of `secrets`, then name the delivery."""
        raise NotImplementedError

    def handshake(self, query: Mapping[str, str], options: dict) -> Reply | None:
        """The answer to a GET on the source URL (a subscription check), or None when the
        provider only POSTs (405). Raise VerificationError to refuse the handshake (403)."""
        return None

    def early_reply(self, request: InboundRequest) -> Reply | None:
        """The answer to a verified request that is a check of the endpoint, not a delivery
        (nothing is published); None for a delivery."""
        return None

    def accepted_reply(self) -> Reply | None:
        """The answer once a delivery is durable; None for the standard JSON receipt."""
        return None

    def __repr__(self) -> str:
        return f"<Provider {self.name}>"
