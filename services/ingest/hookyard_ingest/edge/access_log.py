"""The optional structured access log (`HOOKYARD_ACCESS_LOG`): one record a request, through
the service's own log handler (JSON by default), so it carries `trace_id` and `span_id` when
tracing is on. The path is logged as its route pattern: what a client puts in a URL (a made-up
source id, a query) is not copied into the log."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from hookyard_common.core import metric_labels
from hookyard_ingest.edge.metrics import route_pattern

log = logging.getLogger("hookyard.access")

#: The request id a caller or a proxy in front sends, logged when it is plain and short.
REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128


def middlewares(enabled: bool) -> list:
    """The access log's middleware when it is on; none, and no cost, when it is off."""
    return [log_requests] if enabled else []


@web.middleware
async def log_requests(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info("request", extra=_fields(request, status, started))


def _fields(request: web.Request, status: int, started: float) -> dict:
    fields = {
        "method": metric_labels.method(request.method),
        "route": route_pattern(request),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": request.remote,
    }
    request_id = request.headers.get(REQUEST_ID_HEADER, "")
    if request_id and len(request_id) <= MAX_REQUEST_ID and request_id.isprintable() and request_id.isascii():
        fields["request_id"] = request_id
    return fields
