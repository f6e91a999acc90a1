"""The optional structured access log (`HOOKYARD_ACCESS_LOG`): one record a request, through
the service's own log handler (JSON by default), so it carries `trace_id` and `span_id` when
tracing is on and the ids of the request's log scope (`request_id`, `tenant_id`, `event_id`:
edge/log_scope.py). The path is logged as its route pattern: what a client puts in a URL (a made-up
source id, a query) is not copied into the log."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from hookyard_common.core import metric_labels
from hookyard_ingest.edge.metrics import route_pattern

log = logging.getLogger("hookyard.access")


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
    return {
        "method": metric_labels.method(request.method),
        "route": route_pattern(request),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": request.remote,
    }
