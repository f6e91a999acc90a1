"""The tenant API for endpoints: `/v1/endpoints[/{id}[/secret|/rotate-secret]]`.

Secrets are shown when made (create, rotate) and on `GET .../secret`, never
in listings; auth credentials are never shown again. A rotated secret keeps
signing beside the new one for a grace period (24 h by default), so
receivers can switch without dropping deliveries. Every change is announced
on the broker, so dispatchers and retriers stop using what they cached.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hookyard_common.broker.connection import Broker
from hookyard_common.delivery import signing
from hookyard_common.delivery.endpoint_cache import COLLECTION, announce_change
from hookyard_common.delivery.endpoints import (
    Endpoint,
    EndpointCreate,
    EndpointFields,
    EndpointHealth,
    EndpointSecret,
)
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import list_page, parse_body, validated

DEFAULT_GRACE_SECONDS = 86_400


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str | None = Field(None, max_length=1024)
    grace_seconds: int = Field(DEFAULT_GRACE_SECONDS, ge=0, le=7 * 86_400)


def _check_secret(secret: str, signature_format: str) -> None:
    if signature_format == "standard":
        try:
            signing.secret_key(secret)
        except ValueError as exc:
            raise ApiError(400, "invalid_secret", str(exc), field="secret") from None
    elif len(secret) < 16:
        raise ApiError(400, "invalid_secret", "a secret needs at least 16 characters", field="secret")


def render(doc: dict) -> dict:
    endpoint = Endpoint.model_validate(doc)
    shown = endpoint.model_dump(mode="json", exclude={"secrets", "tenant_id"})
    if shown["auth"]:
        # Credentials are write-only: show which kind, never the value.
        shown["auth"] = {k: ("***" if k in ("token", "password") else v) for k, v in shown["auth"].items()}
    return shown


class EndpointRoutes:
    def __init__(self, store: Store, broker: Broker):
        self.store = store
        self.broker = broker

    async def _own(self, request: web.Request) -> dict:
        tenant = request[TENANT]
        doc = await self.store[COLLECTION].find_one(
            {"_id": request.match_info["endpoint_id"], "tenant_id": tenant["_id"]}
        )
        if doc is None:
            raise ApiError(404, "unknown_endpoint", "no such endpoint")
        return doc

    async def create(self, request: web.Request) -> web.Response:
        body: EndpointCreate = await parse_body(request, EndpointCreate)
        return web.json_response(await self.insert(request[TENANT], body), status=201)

    async def insert(self, tenant: dict, body: EndpointCreate) -> dict:
        """Store a new endpoint of `tenant`; it as shown, with its secret (the one time it is shown with it)."""
        fields = body.model_dump(mode="json", exclude_none=True, exclude={"secret"})
        signature_format = fields.get("signature_format", "standard")
        secret = body.secret or signing.new_secret()
        _check_secret(secret, signature_format)
        now = utcnow()
        doc = {
            **fields,
            "_id": new_id("ep"),
            "tenant_id": tenant["_id"],
            "secrets": [EndpointSecret(secret=secret).model_dump()],
            "created_at": now,
            "updated_at": now,
        }
        # Stored with every default explicit, exactly as the dispatcher will read it.
        doc = validated(Endpoint, doc).model_dump(by_alias=True)
        await self.store[COLLECTION].insert_one(doc)
        await announce_change(self.broker, doc["tenant_id"])
        return {**render(doc), "secret": secret}

    async def list(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        return await list_page(request, self.store[COLLECTION], {"tenant_id": tenant["_id"]}, "created_at", render)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(render(await self._own(request)))

    async def secret(self, request: web.Request) -> web.Response:
        endpoint = Endpoint.model_validate(await self._own(request))
        current = endpoint.signing_secrets(utcnow())
        return web.json_response({"secret": current[0], "previous_secrets_valid": len(current) - 1})

    async def update(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        body: EndpointFields = await parse_body(request, EndpointFields)
        updates = body.model_dump(mode="json", exclude_unset=True)
        if updates.get("signature_format") == "standard":
            _check_secret(doc["secrets"][0]["secret"], "standard")
        if updates.get("active") is True:
            # Re-enabling starts afresh: no reason, no run of failures, no pause.
            updates["disabled_reason"] = None
            updates["health"] = EndpointHealth().model_dump()
        updates["updated_at"] = utcnow()
        validated(Endpoint, {**doc, **updates})  # the endpoint as it would be stored
        return web.json_response(render(await self._set(doc, updates)))

    async def delete(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        await self.store[COLLECTION].delete_one({"_id": doc["_id"]})
        await announce_change(self.broker, doc["tenant_id"])
        return web.Response(status=204)

    async def rotate(self, request: web.Request) -> web.Response:
        doc = await self._own(request)
        body: Rotation = await parse_body(request, Rotation)
        endpoint = Endpoint.model_validate(doc)
        secret = body.secret or signing.new_secret()
        _check_secret(secret, endpoint.signature_format)
        now = utcnow()
        expires = now + timedelta(seconds=body.grace_seconds)
        previous = [
            EndpointSecret(secret=s.secret, expires_at=min(s.expires_at or expires, expires)).model_dump()
            for s in endpoint.secrets
            if s.expires_at is None or s.expires_at > now
        ]
        secrets = [EndpointSecret(secret=secret).model_dump(), *previous]
        stored = await self._set(doc, {"secrets": secrets, "updated_at": now})
        return web.json_response(
            {**render(stored), "secret": secret, "previous_secret_expires_at": expires.isoformat()}
        )

    async def _set(self, doc: dict, fields: dict) -> dict:
        """Write `fields` to the endpoint `doc`, tell its tenant's dispatchers; the endpoint as stored."""
        stored = await self.store[COLLECTION].find_one_and_update(
            {"_id": doc["_id"]}, {"$set": fields}, return_document=True
        )
        if stored is None:  # deleted since `_own` read it
            raise ApiError(404, "unknown_endpoint", "no such endpoint")
        await announce_change(self.broker, stored["tenant_id"])
        return stored
