"""The ingest's Prometheus metrics (listed in docs/metrics.md); no label holds an id or a
value a client chooses (core/metric_labels.py)."""

from aiohttp import web
from prometheus_client import Counter, Histogram

from hookyard_common.core import metric_labels

REQUESTS = Counter(
    "hookyard_ingest_requests_total",
    "Requests to /in/{source}, by provider and outcome (accepted or the error code).",
    ["provider", "outcome"],
)
SIGNATURE_FAILURES = Counter(
    "hookyard_ingest_signature_failures_total",
    "Requests refused because their signature or timestamp did not verify.",
    ["provider"],
)
ACCEPT_SECONDS = Histogram(
    "hookyard_ingest_accept_seconds",
    "Time from request to the 2xx answer, broker confirm included.",
    ["provider"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BYTES_IN = Counter("hookyard_ingest_bytes_total", "Body bytes of accepted requests.", ["provider"])
REPLAYS = Counter(
    "hookyard_replays_total",
    "Deliveries sent again on request, by kind: dead_letter (one), bulk (dead-letter replay), resend.",
    ["kind"],
)
RESPONSES = Counter(
    "hookyard_ingest_http_responses_total",
    "Every HTTP answer of the ingest, by method, route pattern and status code (`other`: unknown method or path).",
    ["method", "route", "status"],
)

_responses: dict[tuple[str, str, int], Counter] = {}


def route_pattern(request: web.Request) -> str:
    """The route the request matched, as its pattern; `other` for a path that matched none
    (which could be anything a client made up)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else metric_labels.OTHER


def _count(request: web.Request, status: int) -> None:
    key = (metric_labels.method(request.method), route_pattern(request), status)
    child = _responses.get(key)
    if child is None:  # label lookups once per route and status, not per request
        child = _responses[key] = RESPONSES.labels(key[0], key[1], str(status))
    child.inc()


@web.middleware
async def count_responses(request: web.Request, handler) -> web.StreamResponse:
    """Outermost middleware: counts the status every request was finally answered with."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _count(request, exc.status)
        raise
    except Exception:
        _count(request, 500)
        raise
    _count(request, response.status)
    return response
