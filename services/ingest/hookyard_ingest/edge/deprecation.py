"""Routes kept under an old name: they answer as before, and say where they went.

Each answer, errors included, carries `Deprecation: true` and a `Link` to its
successor (`rel="successor-version"`, RFC 8594), so a client's logs show the
move long before the old name is removed. Error codes renamed with the route
are given back under their old names, so a client matching on them keeps working.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from hookyard_ingest.edge.errors import ApiError


def renamed(handler: Handler, old: str, new: str, old_codes: Mapping[str, str] | None = None) -> Handler:
    """`handler` under the old path prefix `old`, pointing at the same path under `new`;
    `old_codes` maps the error codes the handler raises now to those the old route answered."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        # As sent, percent-encoded: a decoded path may hold a %0A, which no header may carry.
        successor = quote(request.rel_url.raw_path.replace(old, new, 1), safe="/%-._~:@!$&'()*+,;=")
        notice = {"Deprecation": "true", "Link": f'<{successor}>; rel="successor-version"'}
        try:
            response = await handler(request)
        except ApiError as exc:
            exc.code = (old_codes or {}).get(exc.code, exc.code)
            exc.headers = {**exc.headers, **notice}
            raise
        response.headers.update(notice)
        return response

    return answer
