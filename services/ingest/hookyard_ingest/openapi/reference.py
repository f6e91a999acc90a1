"""The API reference a person reads: `GET /v1/openapi.json` and `GET /v1/docs`.

The page is rendered here from the document, as plain HTML with no
script: nothing to fetch from a CDN, nothing to vendor and keep patched,
and it reads the same document a client generator does. Both are made once,
when the app is, and served from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import orjson
from aiohttp import web

STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "h2{border-bottom:1px solid #ddd;margin-top:2.5rem}section{margin:1.2rem 0;padding:.6rem 1rem;"
    "border-left:4px solid #4a7}code,b.m{font:13px ui-monospace,monospace}b.m{text-transform:uppercase;"
    "margin-right:.5rem}ul{margin:.2rem 0}.s{color:#666}"
)


@dataclass(frozen=True)
class Reference:
    document: bytes
    page: str

    @classmethod
    def of(cls, document: dict[str, Any]) -> Reference:
        return cls(orjson.dumps(document), render(document))

    async def serve_document(self, _: web.Request) -> web.Response:
        return web.Response(body=self.document, content_type="application/json")

    async def serve_page(self, _: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")


#: The reference on the root app: both routes serve it, under ROOT_PATH too.
REFERENCE = web.AppKey("hookyard_reference", Reference)


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    server = document["servers"][0]["url"].rstrip("/")
    groups: dict[str, list[str]] = {}
    for path, item in document["paths"].items():
        for method, op in item.items():
            groups.setdefault(op["tags"][0], []).append(_operation(server + path, method, op))
    body = "".join(f"<h2>{escape(tag)}</h2>{''.join(ops)}" for tag, ops in groups.items())
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(info['title'])}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(info['title'])}</h1><p>{escape(info['description'])} "
        f"The machine-readable contract: <a href='{server}/v1/openapi.json'>openapi.json</a> (OpenAPI "
        f"{document['openapi']}).</p>{body}</body></html>"
    )


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    auth = ", ".join(name for scheme in op["security"] for name in scheme) or "none"
    params = "".join(
        f"<li><code>{escape(p['name'])}</code> ({p['in']}{', required' if p['required'] else ''}) "
        f"{escape(p.get('description', ''))}</li>"
        for p in op["parameters"]
    )
    body = op.get("requestBody", {}).get("content", {})
    answers = "".join(
        f"<li><code>{status}</code> {escape(r['description'])}{_schema_name(r.get('content', {}))}</li>"
        for status, r in op["responses"].items()
    )
    return (
        f"<section id='{op['operationId']}'><p><b class=m>{method}</b><code>{escape(path)}</code></p>"
        f"<p>{escape(op['summary'])} <span class=s>auth: {auth}</span></p>"
        f"{'<p>' + escape(op['description']) + '</p>' if 'description' in op else ''}"
        f"{'<p>Parameters</p><ul>' + params + '</ul>' if params else ''}"
        f"{'<p>Body' + _schema_name(body) + '</p>' if body else ''}"
        f"<p>Answers</p><ul>{answers}</ul></section>"
    )


def _schema_name(content: dict[str, Any]) -> str:
    names = [
        media + (": " + m["schema"]["$ref"].rsplit("/", 1)[1] if "$ref" in m.get("schema", {}) else "")
        for media, m in content.items()
    ]
    return f" <span class=s>({escape(', '.join(names))})</span>" if names else ""
