"""Every error the ingest answers is JSON naming the problem:
`{"error": {"code": "...", "message": "...", ...details}}`; a 400 also says
which input is wrong in `field`.

Routes validate what they read and raise `ApiError`. The middleware adds
safety nets, all about whose fault an unexpected failure is: a body aiohttp
could not decode (bad chunking, a gzip body that is not gzip) is the
client's, a 400, and so is a client that hung up mid-request; a database or
broker that does not answer is nobody's, a 503 to retry. Anything else is a
bug and stays a logged 500.
"""

from __future__ import annotations

import logging

from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pymongo.errors import ConnectionFailure

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None, **details):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, **self.details}}
        return web.json_response(body, status=self.status, headers=self.headers)


# aiohttp's own errors (no route, wrong method, body over client_max_size) in our shape.
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return ApiError(exc.status, code, exc.reason, headers=_allow(exc)).response()
    except (HttpProcessingError, RequestPayloadError) as exc:
        # Raised while the body is read: framing or content encoding the client got wrong.
        message = f"the request body could not be read: {getattr(exc, 'message', None) or exc}"
        return ApiError(400, "malformed_body", message, field="(body)").response()
    except ConnectionFailure:
        # MongoDB unreachable, or its primary changing: not the request's fault, it may be retried.
        return _unavailable(request, "database")
    except (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError) as exc:
        if isinstance(exc, ConnectionResetError) and _client_gone(request):
            # Nobody reads this answer, and the client's leaving is no error of ours.
            log.debug("client disconnected", extra={"path": request.path})
            return ApiError(
                400, "client_disconnected", "the client closed the connection", field="(request)"
            ).response()
        # The broker refused, dropped or did not confirm a publish in time.
        return _unavailable(request, "broker")
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return ApiError(500, "internal_error", "internal error; it has been logged").response()


def _unavailable(request: web.Request, dependency: str) -> web.Response:
    log.warning(f"{dependency} unavailable", extra={"path": request.path}, exc_info=True)
    message = f"the {dependency} is unavailable; retry later"
    return ApiError(503, "unavailable", message, headers={"Retry-After": "5"}).response()


def _client_gone(request: web.Request) -> bool:
    """The request's own connection is closed (not the broker's or the database's)."""
    return request.transport is None or request.transport.is_closing()


def _allow(exc: web.HTTPException) -> dict:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
