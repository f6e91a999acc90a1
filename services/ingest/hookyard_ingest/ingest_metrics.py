"""The ingest's Prometheus metrics (listed in docs/metrics.md)."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "hookyard_ingest_requests_total",
    "Requests to /in/{source}, by source, provider and outcome (accepted or the error code).",
    ["source", "provider", "outcome"],
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
