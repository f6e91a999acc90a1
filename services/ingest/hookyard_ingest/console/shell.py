"""The console's page and files: `/console/` (the shell) and `/console/static/<file>`, from the package.

Nothing is built at start-up and nothing comes from a CDN: `static/` is
plain ES modules and CSS shipped in the wheel, and the files that may be
served are the ones found there at import, so no request path reaches the
file system. Every answer under `/console` (errors too, and the session
routes) carries the headers that make the page safe to render what tenants
send: a Content-Security-Policy that allows only this origin's scripts and
styles (no inline script, no `eval`), `nosniff`, no referrer, no framing,
and `no-store` so a signed-out browser keeps no copy.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")

#: The page's policy: this origin's files only; tenants' data is text, never markup or code.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _files() -> dict[str, tuple[bytes, str]]:
    """Every servable file under static/, by its path there: read once, so serving touches no disk."""
    return {
        path.relative_to(STATIC).as_posix(): (path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


FILES = _files()


async def secure(_: web.Request, response: web.StreamResponse) -> None:
    """On every /console answer, as it is sent (errors turned into JSON by the root app's middleware too)."""
    response.headers.update(SECURITY_HEADERS)


async def serve_shell(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


async def to_shell(request: web.Request) -> web.StreamResponse:
    """`/console` → `/console/`: the shell's relative links need the slash."""
    raise web.HTTPPermanentRedirect(request.path + "/")


async def serve_static(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["path"])


def _file(path: str) -> web.Response:
    found = FILES.get(path)
    if found is None:
        raise web.HTTPNotFound()
    body, media_type = found
    return web.Response(body=body, content_type=media_type, charset="utf-8" if media_type.startswith("text") else None)


def app() -> web.Application:
    shell = web.Application()
    shell.router.add_get("", to_shell)
    shell.router.add_get("/", serve_shell)
    shell.router.add_get("/static/{path:.+}", serve_static)
    shell.on_response_prepare.append(secure)
    return shell
