"""When a monitor expects its next ping: after an interval, or at a cron expression's next time.

A cron schedule is read in the monitor's time zone (`zoneinfo`, with the
`tzdata` package where the system has no zone files) by `cronsim`, the
library healthchecks uses, so its daylight-saving rules are healthchecks':
a time that does not exist on the spring-forward day (02:30 in Lisbon or
New York) fires at the first minute that does (03:00 in Lisbon, 03:00 in
New York), and a time that happens twice on the fall-back day fires once,
the first time. Both are computed in local wall time and stored in UTC,
so the heartbeat's `due_at` index works the same for either kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

#: The longest cron expression accepted (five or six fields, lists and ranges included).
MAX_EXPRESSION = 200


class ScheduleError(ValueError):
    """An expression or time zone that cannot be used; the message names the problem."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (e.g. `Europe/Lisbon`), or a ScheduleError saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone {name[:100]!r} (use an IANA name such as Europe/Lisbon)") from None


@dataclass(frozen=True)
class Cron:
    expression: str
    tz: str = "UTC"

    def check(self) -> None:
        """Raise a ScheduleError naming what is wrong with the expression or the zone."""
        self.next_after(datetime(2000, 1, 1, tzinfo=UTC))

    def next_after(self, at: datetime) -> datetime:
        """The first time strictly after `at` that the expression names, in UTC."""
        if len(self.expression) > MAX_EXPRESSION:
            raise ScheduleError(f"the cron expression is longer than {MAX_EXPRESSION} characters")
        local = at.astimezone(zone(self.tz)).replace(microsecond=0)
        try:
            fires = CronSim(self.expression, local)
            return next(fires).astimezone(UTC)
        except CronSimError as exc:
            raise ScheduleError(f"invalid cron expression {self.expression!r}: {exc}") from None
        except StopIteration:
            raise ScheduleError(f"the cron expression {self.expression!r} never fires") from None


def next_expected(at: datetime, interval_seconds: int | None, cron: Cron | None) -> datetime | None:
    """When the ping after one at `at` is due; None for a push-only monitor."""
    if cron is not None:
        return cron.next_after(at)
    if interval_seconds is not None:
        return at + timedelta(seconds=interval_seconds)
    return None


def of(doc: dict) -> Cron | None:
    """A stored monitor's cron schedule, if it has one."""
    return Cron(doc["schedule"], doc.get("tz") or "UTC") if doc.get("schedule") else None
