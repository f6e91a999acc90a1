"""Maintenance windows: spans of time in which a monitor's changes are recorded but not alerted.

A window is one-off (`start`, `end`) or recurring (`cron` in the time zone
`tz`, lasting `duration_seconds` from each time the expression fires, so
"Sundays 02:00 for two hours, Lisbon time" follows daylight saving). Cron
expressions are read by `cronsim` (the library healthchecks uses) and zones by
the standard `zoneinfo`. Only the question "is `at` inside a window?" is asked,
so nothing about a window is stored but its definition. Pure, no I/O.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from cronsim import CronSim, CronSimError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

#: The most windows one monitor may have.
MAX_WINDOWS = 10
#: The longest one-off window, and the longest occurrence of a recurring one.
MAX_ONE_OFF = timedelta(days=366)
MAX_DURATION_SECONDS = 7 * 86_400
#: The years a one-off window may be in.
YEARS = (2000, 2999)


@functools.cache
def zones() -> frozenset[str]:
    """The zone names `zoneinfo` knows: a user's `tz` is only ever looked up among them."""
    return frozenset(zoneinfo.available_timezones())


class OneOffWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(description="When the window opens (with its UTC offset).")
    end: AwareDatetime = Field(description="When it closes; at most 366 days after `start`.")

    @field_validator("start", "end")
    @classmethod
    def _storable(cls, value: datetime) -> datetime:
        # Stored as UTC: an offset that carries it past year 1 or 9999 could not be.
        if not YEARS[0] <= value.replace(tzinfo=None).year <= YEARS[1]:
            raise ValueError(f"must be between the years {YEARS[0]} and {YEARS[1]}")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> OneOffWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_ONE_OFF:
            raise ValueError("a one-off window lasts at most 366 days")
        return self


class RecurringWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(max_length=100, description="When each occurrence opens: a five-field cron expression.")
    tz: str = Field("UTC", max_length=64, description="The IANA time zone the expression is read in.")
    duration_seconds: int = Field(ge=60, le=MAX_DURATION_SECONDS, description="How long each occurrence lasts.")

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in zones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Lisbon)")
        return value

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            next(CronSim(value, datetime(2000, 1, 1)))
        except (CronSimError, StopIteration) as exc:
            raise ValueError(f"invalid cron expression: {exc or 'it never fires'}") from None
        return value


def _kind(value: Any) -> str:
    """Which window `value` means; anything else is judged (and refused) as a one-off."""
    recurring = isinstance(value, RecurringWindow) or (isinstance(value, dict) and "cron" in value)
    return "recurring" if recurring else "one_off"


MaintenanceWindow = Annotated[
    Annotated[OneOffWindow, Tag("one_off")] | Annotated[RecurringWindow, Tag("recurring")],
    Discriminator(_kind),
]


def active(windows: list[dict], at: datetime) -> dict | None:
    """The first stored window `at` falls in (start inclusive, end exclusive), or None."""
    for window in windows:
        if _opened(window, at) is not None:
            return window
    return None


def _opened(window: dict, at: datetime) -> datetime | None:
    """When the occurrence of `window` that holds `at` opened; None when `at` is outside it."""
    if "cron" not in window:
        return window["start"] if window["start"] <= at < window["end"] else None
    duration = timedelta(seconds=window["duration_seconds"])
    zone = zoneinfo.ZoneInfo(window["tz"])
    # The first firing after `at - duration` is the only one whose occurrence can still hold `at`.
    opened = next(CronSim(window["cron"], (at - duration).astimezone(zone)), None)
    if opened is None or opened > at:
        return None
    return opened.astimezone(UTC)  # in UTC, so adding the duration counts real seconds across a DST change


def ends(window: dict, at: datetime) -> datetime | None:
    """When the occurrence of `window` holding `at` closes (None when `at` is outside it)."""
    opened = _opened(window, at)
    if opened is None:
        return None
    return window["end"] if "cron" not in window else opened + timedelta(seconds=window["duration_seconds"])
