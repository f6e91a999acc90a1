"""Moments given on the command line: `10m`, `2h`, `1d` ago, or an ISO 8601 time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hookyard_cli.api import CliError

UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def moment(value: str, now: datetime | None = None) -> datetime:
    """`10m` → ten minutes before `now`; `2026-11-23T10:00:00Z` → that time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    if value == "now":
        return now
    match = DURATION.match(value.strip())
    if match:
        return now - timedelta(seconds=float(match[1]) * UNITS[match[2]])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{value!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
