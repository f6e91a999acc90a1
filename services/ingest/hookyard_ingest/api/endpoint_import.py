"""`POST /v1/endpoints/import`: seed 001's tenant configuration, made into one endpoint.

A tenant moving from seed 001's webhook manager posts the JSON it gave
`POST /api/v1/webhooks/configure`, unchanged. The translation is a pure
function (`translate`), and the answer says what became of every field:
`mapped` names the endpoint field each one filled, `ignored` says why a
field was not used. The endpoint is then created exactly as
`POST /v1/endpoints` would create it (`EndpointRoutes.insert`), with
seed 001's signature format, so receivers keep verifying
`X-Webhook-Signature: sha256=<hex>` with the secret they have.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.delivery.endpoints import EVENT_PATTERN, EndpointCreate, RetryPolicy
from hookyard_common.header_rules import HEADER_NAME_PATTERN
from hookyard_ingest.api.endpoints import EndpointRoutes
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import parse_body, validated


class SeedAuth(BaseModel):
    """Seed 001's `auth_config`: Basic's token is `username:password`."""

    model_config = ConfigDict(extra="forbid")

    auth_type: Literal["Bearer", "ApiKey", "Basic"]
    token: str = Field(min_length=1, max_length=4096)
    header_name: str | None = Field(None, pattern=HEADER_NAME_PATTERN, max_length=256)


class SeedConfig(BaseModel):
    """Seed 001's tenant configuration, as its `configure` route took it."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(None, max_length=256, description="Ignored: the API key names the tenant.")
    base_url: str = Field(max_length=2048)
    secret_key: str = Field(min_length=16, max_length=1024)
    default_headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    retry_policy: RetryPolicy | None = None
    timeout_seconds: float | None = Field(None, gt=0, le=120)
    enabled_events: list[str] = Field(default_factory=lambda: ["*"], max_length=100)
    active: bool = True
    auth_config: SeedAuth | None = None


def _auth(seed: SeedAuth) -> tuple[dict, str]:
    """The endpoint's `auth` for seed 001's, and how it was read."""
    header = seed.header_name
    if seed.auth_type == "Basic":
        username, colon, password = seed.token.partition(":")
        if not colon or not username:
            message = 'Basic auth\'s token must be "username:password"'
            raise ApiError(400, "invalid_auth_config", message, field="auth_config.token")
        return {"type": "basic", "username": username, "password": password}, "auth (basic, from username:password)"
    if seed.auth_type == "ApiKey":
        return {"type": "api_key", "token": seed.token, "header_name": header or "X-API-Key"}, "auth (api_key)"
    if header is None or header.lower() == "authorization":
        return {"type": "bearer", "token": seed.token}, "auth (bearer)"
    # A bearer token in a header of its own: the same bytes, sent as a named header.
    return {"type": "api_key", "token": f"Bearer {seed.token}", "header_name": header}, f"auth (Bearer in {header})"


def translate(seed: SeedConfig) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The `POST /v1/endpoints` body for seed 001's configuration; what was mapped to what; what was
    ignored and why."""
    body: dict[str, Any] = {
        "url": seed.base_url,
        "secret": seed.secret_key,
        "signature_format": "legacy",
        "headers": seed.default_headers,
        "event_types": seed.enabled_events,
        "active": seed.active,
        "description": "imported from seed 001" + (f" (tenant {seed.tenant_id})" if seed.tenant_id else ""),
    }
    mapped = {
        "base_url": "url",
        "secret_key": "secret (signature_format: legacy)",
        "default_headers": "headers",
        "enabled_events": "event_types",
        "active": "active",
    }
    ignored: dict[str, str] = {}
    bad = [pattern for pattern in seed.enabled_events if not _is_pattern(pattern)]
    if bad:
        message = f"not an event type or filter: {', '.join(map(repr, bad))}"
        raise ApiError(400, "invalid_field", message, field="enabled_events")
    if seed.retry_policy is not None:
        body["retry_policy"] = seed.retry_policy.model_dump(exclude_none=True)
        mapped["retry_policy"] = "retry_policy"
    if seed.timeout_seconds is not None:
        body["timeout_seconds"] = seed.timeout_seconds
        mapped["timeout_seconds"] = "timeout_seconds"
    if seed.auth_config is not None:
        body["auth"], mapped["auth_config"] = _auth(seed.auth_config)
    if seed.tenant_id is not None:
        ignored["tenant_id"] = "the API key names the tenant; kept in the endpoint's description"
    return body, mapped, ignored


def _is_pattern(value: str) -> bool:
    return len(value) <= 256 and re.fullmatch(EVENT_PATTERN, value) is not None


#: The seed 001 field each endpoint field came from, so a refusal names what the client sent.
SEED_FIELDS = {
    "url": "base_url",
    "headers": "default_headers",
    "event_types": "enabled_events",
    "auth": "auth_config",
    "secret": "secret_key",
}


def _in_seed_terms(exc: ApiError) -> ApiError:
    """The endpoint's refusal, its fields renamed to the seed's."""

    def rename(field: str) -> str:
        head, dot, rest = field.partition(".")
        return SEED_FIELDS.get(head, head) + dot + rest

    details = dict(exc.details)
    if "field" in details:
        details["field"] = rename(details["field"])
    if "problems" in details:
        details["problems"] = [{**p, "field": rename(p["field"])} for p in details["problems"]]
    message = exc.message
    if message.startswith(f"{exc.details.get('field')}:"):
        message = details["field"] + message[len(str(exc.details["field"])) :]
    return ApiError(exc.status, exc.code, message, headers=exc.headers, **details)


class EndpointImport:
    def __init__(self, endpoints: EndpointRoutes):
        self.endpoints = endpoints

    async def post(self, request: web.Request) -> web.Response:
        seed: SeedConfig = await parse_body(request, SeedConfig)
        body, mapped, ignored = translate(seed)
        try:
            endpoint = validated(EndpointCreate, body)
        except ApiError as exc:
            raise _in_seed_terms(exc) from None
        shown = await self.endpoints.insert(request[TENANT], endpoint)
        return web.json_response({"endpoint": shown, "mapped": mapped, "ignored": ignored}, status=201)
