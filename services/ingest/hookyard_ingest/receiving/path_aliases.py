"""A source's fixed path alias: the old URLs of a sender that cannot be reconfigured.

A source with `path_alias: "/webhook"` also receives at `POST /webhook/receive`
and answers `GET /webhook/health`, under ROOT_PATH too: seed 000's two URLs.
An alias names one source in the whole deployment (a unique index on
`sources.path_alias`), so it is a mount point, not a route: it is looked up
only for a request no route matched (`serve`, called by the root app's
middleware), and a real route can never be shadowed. Aliases are
cached per replica, like sources, and so are paths that are no alias, so a
scan of random paths costs one lookup each within the caller's failure budget.
"""

from __future__ import annotations

import re

from aiohttp import web

from hookyard_common.core.cache import RefreshingCache
from hookyard_common.records.sources import COLLECTION as SOURCES
from hookyard_common.store.client import Store

#: One to eight segments of URL-safe characters: `/webhook`, `/api/tourism`.
ALIAS_PATTERN = r"^(/[A-Za-z0-9._~-]{1,64}){1,8}$"
#: The first segments Hookyard's own routes use (app.py's wings, the probes and seed 004's monitor URLs).
RESERVED_SEGMENTS = frozenset({"in", "v1", "ping", "badge", "console", "healthz", "readyz", "metrics", "webhooks"})
#: What an alias serves below it.
RECEIVE, HEALTH = "receive", "health"
_SHAPE = re.compile(ALIAS_PATTERN)


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot be a source's path alias; None when it can."""
    if not _SHAPE.fullmatch(alias):
        return "path_alias must be a path of 1 to 8 segments of letters, digits and . _ ~ -, like /webhook"
    segments = alias.split("/")[1:]
    if segments[0] in RESERVED_SEGMENTS:
        return f"path_alias may not start with /{segments[0]}: Hookyard's own routes are there"
    if any(segment in (".", "..") for segment in segments):
        return "path_alias may not contain . or .. segments"
    return None


def split(path: str, root_path: str) -> tuple[str, str] | None:
    """(alias, what) for a path an alias might serve, ROOT_PATH removed; None when it cannot be one."""
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    alias, _, what = path.rpartition("/")
    if what not in (RECEIVE, HEALTH) or alias_problem(alias) is not None:
        return None
    return alias, what


class AliasCache(RefreshingCache[str, "str | None"]):
    """Alias → source id; an alias found missing stays missing for `absent_seconds`."""

    def __init__(self, store: Store, ttl_seconds: float, absent_seconds: float):
        async def load(alias: str) -> str | None:
            doc = await store[SOURCES].find_one({"path_alias": alias}, {"_id": 1})
            return doc["_id"] if doc is not None else None

        super().__init__(load, ttl_seconds, absent_seconds=absent_seconds)


def health(ready: bool) -> web.Response:
    """Seed 000's health check, in its envelope: 200 once the ingest can accept, 503 until then."""
    body = {
        "success": ready,
        "message": "healthy" if ready else "starting",
        "data": {"status": "ready" if ready else "starting"},
    }
    return web.json_response(body, status=200 if ready else 503)
