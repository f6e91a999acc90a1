"""Every log line written while a request is handled carries the ids in hand (core/logs.py):
this middleware opens the request's scope with the request id its caller or a proxy in front
sent, and the code that learns the tenant or makes the event binds them. The id is taken only
when it is plain and short: a client's header is not copied into the logs as it came."""

from __future__ import annotations

from aiohttp import web

from hookyard_common.core import logs

#: The request id a caller or a proxy in front sends.
REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128


@web.middleware
async def scope_logs(request: web.Request, handler) -> web.StreamResponse:
    """Inside the request span (its ids are the span's), around everything that logs."""
    request_id = request.headers.get(REQUEST_ID_HEADER, "")
    plain = 0 < len(request_id) <= MAX_REQUEST_ID and request_id.isprintable() and request_id.isascii()
    with logs.scope(**({"request_id": request_id} if plain else {})):
        return await handler(request)
