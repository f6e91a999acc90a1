"""Sources: where providers send webhooks (`/in/{source_id}`), and how each is checked.

The tenant API manages them; the receiving path reads them through
`SourceCache`, so a hot source costs no database round trip (changes reach
other replicas within HOOKYARD_SOURCE_CACHE_SECONDS).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymongo.errors import DuplicateKeyError

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.core.json_path import FieldPath
from hookyard_common.core.settings import Settings
from hookyard_common.records.message_log import COLLECTION as MESSAGE_LOG
from hookyard_common.records.sources import COLLECTION as SOURCES
from hookyard_common.schemas import new_id, utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import Network, parse_networks
from hookyard_ingest.edge.request_io import list_page, parse_body
from hookyard_ingest.receiving.path_aliases import AliasCache, alias_problem
from hookyard_ingest.receiving.payload_schema import PayloadSchema
from hookyard_ingest.receiving.providers import PROVIDERS, OptionsError, Provider

T = TypeVar("T")

MAX_SECRETS = 5
#: What `new_id("src")` makes: anything else is answered 404 without a lookup.
SOURCE_ID_SHAPE = re.compile(r"^src_[A-Za-z0-9_-]{24}$")
BODY_LIMIT_FACTOR = 16
# Far above any real sender's rate, and well inside what MongoDB stores (64-bit integers).
MAX_RATE_LIMIT = 1_000_000_000


DEDUP_PATH = (
    "A body field (dotted path) whose string or integer is the message's dedup key, such as WhatsApp's "
    "`messageId`; a message without it is deduplicated as the provider does "
    "(docs/ingest.md#a-dedup-field-from-the-body)."
)


class SourceFields(BaseModel):
    """What a tenant may set; every field optional so PATCH can reuse it. In a PATCH, null
    clears a setting (the default applies again), except `name` and `secrets`, which a
    source always has: null is refused for them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    secrets: list[str] | None = Field(None, max_length=MAX_SECRETS)
    options: dict[str, Any] | None = None
    max_body_bytes: int | None = Field(None, ge=1, le=2**40)
    payload_schema: PayloadSchema | None = Field(None, alias="schema")
    allowed_cidrs: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=1_000)
    rate_limit_per_ip: int | None = Field(None, ge=1, le=MAX_RATE_LIMIT)
    rate_limit_per_source: int | None = Field(None, ge=1, le=MAX_RATE_LIMIT)
    dedup_path: FieldPath | None = Field(None, description=DEDUP_PATH)
    path_alias: str | None = Field(
        None,
        max_length=200,
        description="A fixed path, unique in the deployment: the source also receives at `POST <alias>/receive` "
        "and answers `GET <alias>/health` (seed 000's `/webhook`).",
    )
    response_style: Literal["standard", "envelope"] | None = Field(
        None, description='`envelope`: answers as `{"success", "message", "data"}` (seed 000).'
    )

    @field_validator("path_alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        if value is not None and (problem := alias_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("name", "secrets", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not s or len(s) > 1024 for s in value):
            raise ValueError("each secret must be 1 to 1024 characters")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return [str(ipaddress.ip_network(cidr, strict=False)) for cidr in value]
        except ValueError as exc:
            raise ValueError(f"invalid CIDR: {exc}") from None


class SourceCreate(SourceFields):
    name: str = Field(min_length=1, max_length=200)
    provider: str = Field(max_length=64)


@dataclass(frozen=True)
class Source:
    """A source as the receiving path needs it, parsed once per cache fill."""

    doc: dict
    provider: Provider
    networks: tuple[Network, ...]
    payload_schema: PayloadSchema | None

    @property
    def id(self) -> str:
        return self.doc["_id"]

    @property
    def enveloped(self) -> bool:
        """Whether it answers in seed 000's `{"success", "message", "data"}`."""
        return self.doc.get("response_style") == "envelope"

    @classmethod
    def from_doc(cls, doc: dict) -> Source:
        schema = doc.get("schema")
        return cls(
            doc=doc,
            provider=PROVIDERS[doc["provider"]],
            networks=parse_networks(doc.get("allowed_cidrs") or ()),
            payload_schema=PayloadSchema.model_validate(schema) if schema else None,
        )


class SourceCache(RefreshingCache[str, "Source | None"]):
    """Sources by id: a hot source costs no database round trip, nor does an id asked for
    again within `absent_seconds` of being found missing (a deleted source a provider retries)."""

    def __init__(self, store: Store, ttl_seconds: float, absent_seconds: float):
        async def load(source_id: str) -> Source | None:
            if not SOURCE_ID_SHAPE.fullmatch(source_id):
                return None  # not one of ours: no need to ask
            doc = await store[SOURCES].find_one({"_id": source_id})
            return Source.from_doc(doc) if doc is not None else None

        super().__init__(load, ttl_seconds, absent_seconds=absent_seconds)


def _generated_secret(provider: str) -> list[str]:
    generated = PROVIDERS[provider].generated_secrets()
    if generated is not None:
        return generated
    raise ApiError(
        400,
        "secret_required",
        f"provider {provider!r} signs with a secret it issues: pass it in `secrets`",
        field="secrets",
    )


def _check(provider_name: str, fields: SourceFields, settings: Settings, *, creating: bool = False) -> dict:
    """Validate fields against the provider and settings; the updates to store."""
    updates = fields.model_dump(exclude_unset=True, by_alias=True)
    if creating:
        updates["options"] = updates.get("options") or {}
    if "options" in updates:
        try:
            updates["options"] = PROVIDERS[provider_name].check_options(updates["options"] or {})
        except OptionsError as exc:
            raise ApiError(400, "invalid_options", str(exc), field="options") from None
    limit = settings.max_body_bytes * BODY_LIMIT_FACTOR
    if (updates.get("max_body_bytes") or 0) > limit:
        raise ApiError(400, "invalid_field", f"max_body_bytes may be at most {limit}", field="max_body_bytes")
    if updates.get("secrets") == [] and PROVIDERS[provider_name].needs_secret:
        raise ApiError(400, "secret_required", "a source needs at least one secret", field="secrets")
    if updates.get("schema") is not None and fields.payload_schema is not None:
        updates["schema"] = fields.payload_schema.model_dump()
    return updates


def public_source(doc: dict, base_url: str) -> dict:
    hidden = PROVIDERS[doc["provider"]].secret_options  # credentials: accepted, never shown again
    options = {k: ("***" if k in hidden else v) for k, v in (doc.get("options") or {}).items()}
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "provider": doc["provider"],
        "url": f"{base_url}/in/{doc['_id']}",
        "options": options,
        "secrets_count": len(doc.get("secrets") or []),
        "max_body_bytes": doc.get("max_body_bytes"),
        "schema": doc.get("schema"),
        "allowed_cidrs": doc.get("allowed_cidrs") or [],
        "rate_limit_per_ip": doc.get("rate_limit_per_ip"),
        "rate_limit_per_source": doc.get("rate_limit_per_source"),
        "dedup_path": doc.get("dedup_path"),
        "path_alias": doc.get("path_alias"),
        "response_style": doc.get("response_style") or "standard",
        "created_at": doc["created_at"].isoformat(),
        "updated_at": doc["updated_at"].isoformat(),
    }


async def _alias_held_elsewhere(write: Awaitable[T], alias: str | None) -> T:
    """The write's result; a 409 when the unique index says another source holds the alias."""
    try:
        return await write
    except DuplicateKeyError:
        message = f"the path alias {alias} is taken by another source in this deployment"
        raise ApiError(409, "path_alias_taken", message, field="path_alias") from None


class SourceRoutes:
    def __init__(self, store: Store, cache: SourceCache, aliases: AliasCache, settings: Settings, base_url):
        self.store = store
        self.cache = cache
        self.aliases = aliases
        self.settings = settings
        self.base_url = base_url  # request -> public base URL

    def _forget_aliases(self, *aliases: str | None) -> None:
        """Aliases whose source changed here: read afresh (other replicas within the cache's period)."""
        for alias in aliases:
            if alias is not None:
                self.aliases.invalidate(alias)

    async def _own(self, request: web.Request) -> tuple[dict, dict]:
        tenant = request[TENANT]
        doc = await self.store[SOURCES].find_one({"_id": request.match_info["source_id"], "tenant_id": tenant["_id"]})
        if doc is None:
            raise ApiError(404, "unknown_source", "no such source")
        return tenant, doc

    async def create(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        body: SourceCreate = await parse_body(request, SourceCreate)
        if body.provider not in PROVIDERS:
            raise ApiError(
                400,
                "unknown_provider",
                f"unknown provider {body.provider!r}",
                field="provider",
                providers=sorted(PROVIDERS),
            )
        updates = _check(body.provider, body, self.settings, creating=True)
        updates.pop("provider")
        generated = not updates.get("secrets")
        secrets = updates.get("secrets") or _generated_secret(body.provider)
        now = utcnow()
        doc = {
            **updates,
            "_id": new_id("src"),
            "tenant_id": tenant["_id"],
            "provider": body.provider,
            "secrets": secrets,
            "created_at": now,
            "updated_at": now,
        }
        if doc.get("path_alias") is None:
            doc.pop("path_alias", None)  # absent, not null: the unique index skips only absent ones
        await _alias_held_elsewhere(self.store[SOURCES].insert_one(doc), doc.get("path_alias"))
        self.cache.invalidate(doc["_id"])  # a probe of this id before now is no longer true
        self._forget_aliases(doc.get("path_alias"))
        shown = public_source(doc, self.base_url(request))
        # The one time secrets are shown: so the tenant can configure the sender.
        shown["secrets"] = secrets
        shown["secrets_generated"] = generated
        return web.json_response(shown, status=201)

    async def list(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        return await list_page(
            request,
            self.store[SOURCES],
            {"tenant_id": tenant["_id"]},
            "created_at",
            lambda d: public_source(d, self.base_url(request)),
        )

    async def get(self, request: web.Request) -> web.Response:
        _, doc = await self._own(request)
        return web.json_response(public_source(doc, self.base_url(request)))

    async def stats(self, request: web.Request) -> web.Response:
        """When the source last received a message (from the message log) and how many signatures it refused."""
        tenant, doc = await self._own(request)
        last = await self.store[MESSAGE_LOG].find_one(
            {"tenant_id": tenant["_id"], "source_id": doc["_id"]},
            {"received_at": 1},
            sort=[("received_at", -1), ("_id", -1)],
        )
        failed_at = doc.get("last_signature_failure_at")
        return web.json_response(
            {
                "source_id": doc["_id"],
                "last_received_at": last["received_at"].isoformat() if last else None,
                "signature_failures": doc.get("signature_failures", 0),
                "last_signature_failure_at": failed_at.isoformat() if failed_at else None,
            }
        )

    async def update(self, request: web.Request) -> web.Response:
        _, doc = await self._own(request)
        fields: SourceFields = await parse_body(request, SourceFields)
        updates = _check(doc["provider"], fields, self.settings)
        updates["updated_at"] = utcnow()
        change: dict = {"$set": updates}
        if "path_alias" in updates and updates["path_alias"] is None:
            change["$unset"] = {"path_alias": ""}  # absent, not null: the unique index skips only absent ones
            del updates["path_alias"]
        stored = await _alias_held_elsewhere(
            self.store[SOURCES].find_one_and_update({"_id": doc["_id"]}, change, return_document=True),
            updates.get("path_alias"),
        )
        self.cache.invalidate(doc["_id"])
        self._forget_aliases(doc.get("path_alias"), updates.get("path_alias"))
        if stored is None:  # deleted since `_own` read it
            raise ApiError(404, "unknown_source", "no such source")
        return web.json_response(public_source(stored, self.base_url(request)))

    async def delete(self, request: web.Request) -> web.Response:
        _, doc = await self._own(request)
        await self.store[SOURCES].delete_one({"_id": doc["_id"]})
        self.cache.invalidate(doc["_id"])
        self._forget_aliases(doc.get("path_alias"))
        return web.Response(status=204)
