"""The public URLs providers use, as seen from behind proxies and under ROOT_PATH."""

from __future__ import annotations

from aiohttp import web

from hookyard_common.core.settings import Settings
from hookyard_ingest.edge.limits import Network, in_networks


def public_base(request: web.Request, settings: Settings, trusted: tuple[Network, ...]) -> str:
    """`scheme://host[/root_path]` as providers reach us."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + settings.root_path
    scheme, host = request.scheme, request.headers.get("Host", request.host)
    if trusted and in_networks(request.remote or "", trusted):
        scheme = _first(request.headers.get("X-Forwarded-Proto")) or scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or host
    return f"{scheme}://{host}{settings.root_path}"


def local_path(request: web.Request, settings: Settings) -> str:
    """The request path without ROOT_PATH (whether or not the proxy stripped it)."""
    path = request.path
    root = settings.root_path
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def request_url(request: web.Request, settings: Settings, trusted: tuple[Network, ...]) -> str:
    """The full URL the provider called, query included (Twilio signs it)."""
    url = public_base(request, settings, trusted) + local_path(request, settings)
    query = request.query_string
    return f"{url}?{query}" if query else url


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() if value else None
