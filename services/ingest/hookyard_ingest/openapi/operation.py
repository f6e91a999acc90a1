"""One API operation, declared once: the route aiohttp serves and the entry the OpenAPI document shows.

`app.py`'s route table is a list of `Operation`s; `Wing` turns each into a
`web.RouteDef` and `document.build` into a path item, so the served routes
and the published contract cannot drift apart. Bodies and answers are the
pydantic models the handlers read and the shapes in `resources.py`; query
parameters are a model too, one field a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel


class Access(StrEnum):
    """Who may call an operation: the security scheme the document names for it."""

    public = "public"
    admin = "admin"  # `Authorization: Bearer <HOOKYARD_ADMIN_TOKEN>`
    tenant = "tenant"  # `Authorization: Bearer <the tenant's API key>`
    token = "token"  # public, but the path carries the secret (a monitor's ping token)


#: The answer an operation documents for a status: a model, None for an empty body, or a media type's schema.
Answer = type[BaseModel] | None | Mapping[str, dict]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below its wing's prefix; "" is the prefix itself
    handler: Handler
    summary: str
    answers: Mapping[int, Answer]  # the statuses a success may have, and what each carries
    errors: tuple[int, ...] = ()  # the 4xx/5xx a handler raises itself, besides its wing's (auth, gate)
    body: type[BaseModel] | None = None
    example: Mapping[str, Any] | None = None  # a body that works, shown in the reference and tried first
    query: type[BaseModel] | None = None
    description: str = ""
    tag: str = ""
    body_media: Mapping[str, dict] = field(default_factory=dict)  # a body that is not JSON (a provider's)
    websocket: bool = False  # a GET answered 101 Switching Protocols
    allow_head: bool = True  # a GET also answers HEAD (aiohttp's default; not for WebSockets or handshakes)
    deprecated: bool = False  # an old name kept for existing clients (docs/api.md#deprecated-names)

    def route(self) -> web.RouteDef:
        if self.method == "GET":
            return web.get(self.path, self.handler, allow_head=self.allow_head and not self.websocket)
        return web.route(self.method, self.path, self.handler)
