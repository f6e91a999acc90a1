"""A monitor's history, in three collections beside the monitor itself.

- `monitor_checks`: one record per ping received (the ingest's check log),
  expiring after HOOKYARD_MONITOR_CHECK_RETENTION_DAYS;
- `monitor_flips`: one record per state change (monitors/changes.py),
  expiring after HOOKYARD_MONITOR_HISTORY_RETENTION_DAYS (at least 31, since
  uptime over 30 days is computed from them);
- `monitor_incidents`: one from entering degraded or down until up again or paused,
  opened, updated and resolved by the same changes; a resolved one expires
  like the flips, an open one (`resolved_at` null) never.

The tenant API reads each newest first for one monitor, which is every
collection's `monitor_recent` index (`_id` breaks ties for stable pages).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes
from hookyard_common.store.retention import Retention

CHECKS = "monitor_checks"
FLIPS = "monitor_flips"
INCIDENTS = "monitor_incidents"

CHECK_INDEXES = CollectionIndexes(
    CHECKS,
    (IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
    retired=("retention_ttl",),  # on a per-record `expires_at`: a changed retention would only reach new records
    retention=Retention("at", "monitor_check_retention_days"),
)
FLIP_INDEXES = CollectionIndexes(
    FLIPS,
    (IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
    retention=Retention("at", "monitor_history_retention_days"),
)
INCIDENT_INDEXES = CollectionIndexes(
    INCIDENTS,
    (IndexModel([("monitor_id", ASCENDING), ("opened_at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
    retention=Retention("resolved_at", "monitor_history_retention_days"),
)
