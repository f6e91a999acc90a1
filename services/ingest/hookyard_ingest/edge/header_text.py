"""Header values that are not UTF-8 text are refused before any route reads them.

aiohttp keeps undecodable header bytes as lone surrogates (`surrogateescape`),
which no encoder accepts: stored with a message or a ping check, or hashed
as an API key, such a value fails deep inside the request, as a 500. One
check at the edge, cheap for the ASCII headers nearly every request has,
answers a 400 naming the header instead.
"""

from __future__ import annotations

from aiohttp import web

from hookyard_ingest.edge.errors import ApiError


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@web.middleware
async def require_text_headers(request: web.Request, handler) -> web.StreamResponse:
    for name, value in request.headers.items():
        if not _is_text(value):
            raise ApiError(400, "malformed_header", f"the {name} header is not valid UTF-8 text", field=name)
    return await handler(request)
