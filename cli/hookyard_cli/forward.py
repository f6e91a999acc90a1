"""Re-sending a message to the developer's app: same method, headers and raw body.

Left out are the headers that belong to one connection rather than to the
message (hop-by-hop, RFC 9110 §7.6.1), `Host` and `Content-Length` (this
request's own), and `Content-Encoding`: the ingest stored the body decoded.
The provider's signature covers the body and its own headers, so it still
verifies. Nothing is retried: the developer sees each answer and decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict

from hookyard_cli.api import unreachable
from hookyard_cli.wire import Request

NOT_FORWARDED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
    "expect",
}


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, timed out)
    latency_ms: float
    error: str | None = None


def forwarded_headers(pairs: list[tuple[str, str]]) -> CIMultiDict:
    # Also what the Connection header names: hop-by-hop by declaration.
    named = {
        token.strip().lower() for name, value in pairs if name.lower() == "connection" for token in value.split(",")
    }
    headers: CIMultiDict = CIMultiDict()
    for name, value in pairs:
        if name.lower() not in NOT_FORWARDED and name.lower() not in named:
            headers.add(name, value)
    return headers


def target_url(forward_to: str, query: str) -> str:
    if not query:
        return forward_to
    return forward_to + ("&" if "?" in forward_to else "?") + query


async def forward(session: aiohttp.ClientSession, forward_to: str, request: Request) -> Answer:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        async with session.request(
            request.method,
            target_url(forward_to, request.query),
            headers=forwarded_headers(request.headers),
            data=request.raw_body,
            allow_redirects=False,
            # The provider's own User-Agent, Accept... or none: nothing of aiohttp's added.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        ) as response:
            await response.read()
            return Answer(response.status, elapsed())
    except TimeoutError:
        return Answer(None, elapsed(), "timed out")
    except aiohttp.ClientConnectorError as exc:
        return Answer(None, elapsed(), unreachable(exc))
    except aiohttp.ClientError as exc:
        return Answer(None, elapsed(), f"{type(exc).__name__}: {exc}")
