"""Every error the ingest answers is JSON naming the problem:
`{"error": {"code": "...", "message": "...", ...details}}`."""

from __future__ import annotations

import logging

from aiohttp import web

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
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return ApiError(500, "internal_error", "internal error; it has been logged").response()


def _allow(exc: web.HTTPException) -> dict:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
