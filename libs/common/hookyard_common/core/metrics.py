"""Prometheus metrics shared by every service, and the `/metrics` exposition.

Metric names start with `hookyard_`; `docs/metrics.md` lists them all. Under
gunicorn with several workers, `PROMETHEUS_MULTIPROC_DIR` is set (by the
ingest's `gunicorn.conf.py`) and `/metrics` aggregates every worker.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

SERVICE_INFO = Gauge(
    "hookyard_service_info",
    "Which Hookyard service and version this process runs, and on which event loop (always 1).",
    ["service", "version", "event_loop"],
    multiprocess_mode="max",
)
READY = Gauge(
    "hookyard_ready",
    "1 when the service reports ready (broker and database reachable).",
    multiprocess_mode="livemin",
)
DEPENDENCY_UP = Gauge(
    "hookyard_dependency_up",
    "1 when the dependency is reachable: the database as of the last readiness check, the broker"
    " as of the last readiness check or scrape.",
    ["dependency"],
    multiprocess_mode="livemin",
)
MESSAGES_CONSUMED = Counter(
    "hookyard_messages_consumed_total",
    "Broker messages handled by a consumer, by queue and outcome (ack, requeue, reject).",
    ["queue", "outcome"],
)
MESSAGE_HANDLING_SECONDS = Histogram(
    "hookyard_message_handling_seconds",
    "Time from a consumer receiving a message to settling it.",
    ["queue"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge(
    "hookyard_messages_in_flight",
    "Messages being handled right now.",
    ["queue"],
    multiprocess_mode="livesum",
)


def set_service(name: str, version: str, event_loop: str) -> None:
    SERVICE_INFO.labels(name, version, event_loop).set(1)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
