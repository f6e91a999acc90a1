"""Label values that keep Prometheus bounded however many tenants, sources and endpoints exist.

No default metric has a label holding an id (tenant, source, endpoint): the per-tenant
figures are the tenant metrics API's (`GET /v1/metrics`). An operator who wants them in
Prometheus too sets `HOOKYARD_METRICS_TENANT_LABELS` to N: the `hookyard_tenant_*`
families then label the first N tenants this process sees by their id and every later
one `other`, so a process never exposes more than N + 1 tenant values. What a client
chooses (its HTTP method, its path) is labelled only when it is one we know, else `other`.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import Counter, Gauge

Metric = TypeVar("Metric", Counter, Gauge)

#: The value of every label whose real value is not one to keep.
OTHER = "other"

#: The HTTP methods the ingest answers; any other a client sends is counted as `other`.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

TENANT_INGEST_REQUESTS = Counter(
    "hookyard_tenant_ingest_requests_total",
    "Opt-in (HOOKYARD_METRICS_TENANT_LABELS): requests to /in/{source}, by tenant and outcome.",
    ["tenant", "outcome"],
)
TENANT_DELIVERIES = Counter(
    "hookyard_tenant_deliveries_total",
    "Opt-in (HOOKYARD_METRICS_TENANT_LABELS): delivery attempts, by tenant and outcome.",
    ["tenant", "outcome"],
)
TENANT_IN_FLIGHT = Gauge(
    "hookyard_tenant_deliveries_in_flight",
    "Opt-in (HOOKYARD_METRICS_TENANT_LABELS): deliveries in flight, by tenant.",
    ["tenant"],
    multiprocess_mode="livesum",
)


def method(value: str) -> str:
    return value if value in KNOWN_METHODS else OTHER


class TenantLabels:
    """Which tenant ids get a label value of their own: the first `cap` seen, none when 0."""

    def __init__(self, cap: int = 0):
        self.cap = cap
        self._kept: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.cap > 0

    def value(self, tenant_id: str) -> str:
        if tenant_id in self._kept:
            return tenant_id
        if len(self._kept) < self.cap:
            self._kept.add(tenant_id)
            return tenant_id
        return OTHER


#: This process's choice, set once at start-up from the settings (`limit_tenants`).
TENANTS = TenantLabels()


def limit_tenants(cap: int) -> None:
    global TENANTS
    TENANTS = TenantLabels(cap)


def per_tenant(metric: Metric, tenant_id: str, *labels: str) -> Metric | None:
    """The tenant's child of a `hookyard_tenant_*` metric; None while tenant labels are off."""
    if not TENANTS.enabled:
        return None
    return metric.labels(TENANTS.value(tenant_id), *labels)


def count_for_tenant(metric: Counter, tenant_id: str, *labels: str) -> None:
    child = per_tenant(metric, tenant_id, *labels)
    if child is not None:
        child.inc()
