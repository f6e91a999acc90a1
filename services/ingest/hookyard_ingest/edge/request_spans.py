"""The ingest's request span: the root of an event's trace, or the continuation of the
`traceparent` its sender sent (core/tracing.py). Off, it is one attribute read per request."""

from aiohttp import web
from opentelemetry.trace import SpanKind, StatusCode

from hookyard_common.core import metric_labels, tracing
from hookyard_ingest.edge.metrics import route_pattern


@web.middleware
async def trace_requests(request: web.Request, handler) -> web.StreamResponse:
    """Outermost middleware: every request in a SERVER span named by its route pattern."""
    if not tracing.ENABLED:
        return await handler(request)
    route = route_pattern(request)
    method = metric_labels.method(request.method)
    attributes = {"http.request.method": method, "http.route": route}
    with tracing.span(f"{method} {route}", SpanKind.SERVER, request.headers, attributes) as current:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _answered(current, exc.status)
            raise
        _answered(current, response.status)
        return response


def _answered(current, status: int) -> None:
    if current is not None:
        current.set_attribute("http.response.status_code", status)
        if status >= 500:
            current.set_status(StatusCode.ERROR)
