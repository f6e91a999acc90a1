"""A monitor's history, in three collections beside the monitor itself.

- `monitor_checks`: one record per ping received (the ingest's check log),
  expiring after HOOKYARD_MONITOR_CHECK_RETENTION_DAYS;
- `monitor_flips`: one record per state change (monitors/changes.py), never
  expiring, since uptime is computed from them;
- `monitor_incidents`: one from entering degraded or down until up again or paused,
  opened, updated and resolved by the same changes.

The tenant API reads each newest first for one monitor, which is every
collection's `monitor_recent` index (`_id` breaks ties for stable pages).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from hookyard_common.store.client import CollectionIndexes

CHECKS = "monitor_checks"
FLIPS = "monitor_flips"
INCIDENTS = "monitor_incidents"

CHECK_INDEXES = CollectionIndexes(
    CHECKS,
    (
        IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="retention_ttl"),
    ),
)
FLIP_INDEXES = CollectionIndexes(
    FLIPS,
    (IndexModel([("monitor_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
)
INCIDENT_INDEXES = CollectionIndexes(
    INCIDENTS,
    (IndexModel([("monitor_id", ASCENDING), ("opened_at", DESCENDING), ("_id", DESCENDING)], name="monitor_recent"),),
)
