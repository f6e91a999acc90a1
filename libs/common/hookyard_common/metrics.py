"""Prometheus metrics shared by every service, and the `/metrics` exposition.

Metric names start with `hookyard_`; `docs/metrics.md` lists them all.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest

SERVICE_INFO = Info("hookyard_service", "Which Hookyard service and version this process runs.")
READY = Gauge("hookyard_ready", "1 when the service reports ready (broker and database reachable).")
DEPENDENCY_UP = Gauge(
    "hookyard_dependency_up", "1 when the dependency answered the last readiness check.", ["dependency"]
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
IN_FLIGHT = Gauge("hookyard_messages_in_flight", "Messages being handled right now.", ["queue"])


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
