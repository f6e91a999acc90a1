"""A deadline for each request head: a slowloris sender is cut off, an idle connection is not.
Requests the HTTP parser refuses are answered in the house's JSON shape too.

aiohttp has no header-read timeout. Its keep-alive timer does close a
connection whose head is unfinished, but counting from when the connection
opened or last answered, so using it as the deadline would also close idle
keep-alive connections that early, and a proxy reusing one would see a reset
(nginx does not resend a POST: the provider gets a 502). So the deadline
starts at the first byte of a head instead: `HeadDeadlineHandler` arms a
timer when bytes arrive with no request under way and drops it when the
parser has the whole head. When it fires, the sender gets a 408 in the
house's JSON shape and the connection is closed. The body has its own
deadline in the ingest (`body_intake`), where a handler can answer it.

This leans on three of `RequestHandler`'s attributes (`_request_count`,
`_request_in_progress`, `_messages`); `tests/ingest/edge/test_slow_clients.py` fails if
an aiohttp upgrade changes them.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

#: How much of the HTTP parser's reason a malformed request is told (it may quote the sender's bytes).
PARSER_REASON_MAX = 200


def timeout_answer(message: str, timeout_seconds: float) -> bytes:
    """A whole HTTP/1.1 408 response that closes the connection, for writing straight to the socket."""
    body = orjson.dumps({"error": {"code": "request_timeout", "message": message, "timeout_seconds": timeout_seconds}})
    head = (
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadDeadlineHandler(web.RequestHandler):
    """aiohttp's connection handler, with a deadline for each request head from its first byte."""

    __slots__ = ("_head_timeout", "_head_timer")

    def __init__(self, manager: web.Server, *, head_timeout: float, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._disarm()  # the head is complete: the body is the handler's to time
        elif self._head_timer is None and not self._request_in_progress and not self._messages:
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_expired)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp's HTTP parser refused (bad framing, a bad request line) gets the
        house's JSON error like any other 4xx; a sender's garbage is logged at debug, not as an
        error, so it cannot fill the logs."""
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        self.logger.debug("malformed request from %s", request.remote, exc_info=exc)
        reason = str(getattr(exc, "message", "") or message or "").strip()
        # aiohttp adds the offending line, quoted, below its reason: the first line is enough.
        reason = reason.splitlines()[0].rstrip(":") if reason else "malformed HTTP request"
        body = {
            "error": {
                "code": "malformed_request",
                "message": f"the request could not be parsed: {reason[:PARSER_REASON_MAX]}",
                "field": "(request)",
            }
        }
        response = web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
        response.force_close()
        return response

    def log_exception(self, *args, **kwargs) -> None:
        """A body the client framed or encoded wrong was answered 400; aiohttp meets the same
        error again while it drains the rest, which is no error of ours to log."""
        if isinstance(kwargs.get("exc_info"), (HttpProcessingError, RequestPayloadError)):
            self.logger.debug(*args, **kwargs)
            return
        super().log_exception(*args, **kwargs)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._request_in_progress or self.transport is None:
            return
        message = f"the request head was not received within {self._head_timeout:g} s"
        self.transport.write(timeout_answer(message, self._head_timeout))
        self.force_close()  # close() flushes the answer first


class HeadDeadlineServer(web.Server):
    """aiohttp's low-level server, making `HeadDeadlineHandler`s for its connections."""

    head_timeout: float = 30.0

    def __call__(self) -> web.RequestHandler:
        return HeadDeadlineHandler(self, loop=self._loop, head_timeout=self.head_timeout, **self._kwargs)


class HeadDeadlineRunner(web.AppRunner):
    """An `AppRunner` whose connections have a head deadline; gunicorn's aiohttp worker takes one too."""

    def __init__(self, app: web.Application, *, head_timeout: float, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds a plain `web.Server`; only its protocol factory changes.
        server.__class__ = HeadDeadlineServer
        assert isinstance(server, HeadDeadlineServer)  # for mypy, which cannot follow a __class__ change
        server.head_timeout = self._head_timeout
        return server
