"""Cron schedules: the next expected ping across daylight-saving changes, the cron forms cronsim
reads, and refusal of what it cannot (through the heartbeat: test_monitors_heartbeat.py)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hookyard_common.monitors.schedule import Cron, ScheduleError, next_expected
from hookyard_common.monitors.states import deadlines
from monitor_helpers import create_monitor


def local(iso: str, tz: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=ZoneInfo(tz))


def fires(expression: str, tz: str, after: str, count: int = 3) -> list[str]:
    """The next `count` times, as local wall-clock ISO strings with their offset."""
    cron, at, shown = Cron(expression, tz), local(after, tz), []
    for _ in range(count):
        at = cron.next_after(at)
        assert at.tzinfo == UTC
        shown.append(at.astimezone(ZoneInfo(tz)).isoformat())
    return shown


@pytest.mark.parametrize(
    ("tz", "day", "first", "offset_after"),
    [
        # New York springs forward at 02:00 EST: 02:30 does not exist and fires at 03:00 EDT, once.
        ("America/New_York", "2026-03-08", "03:00:00-04:00", "-04:00"),
        # It falls back at 02:00 EDT to 01:00 EST: 02:30 then happens once, in EST.
        ("America/New_York", "2026-11-01", "02:30:00-05:00", "-05:00"),
        # Lisbon moves at 01:00 local, so 02:30 exists on both days: only the offset changes.
        ("Europe/Lisbon", "2026-03-29", "02:30:00+01:00", "+01:00"),
        ("Europe/Lisbon", "2026-10-25", "02:30:00+00:00", "+00:00"),
        # Berlin springs forward 02:00 -> 03:00: 02:30 fires at 03:00, once.
        ("Europe/Berlin", "2026-03-29", "03:00:00+02:00", "+02:00"),
        # Berlin falls back 03:00 -> 02:00: 02:30 happens twice and fires once, the first time (CEST).
        ("Europe/Berlin", "2026-10-25", "02:30:00+02:00", "+01:00"),
    ],
)
def test_a_0230_job_across_daylight_saving_changes(tz, day, first, offset_after):
    on = datetime.fromisoformat(day)
    following = [(on + timedelta(days=n)).date().isoformat() for n in (1, 2)]
    assert fires("30 2 * * *", tz, (on - timedelta(hours=12)).isoformat()) == [
        f"{day}T{first}",
        *(f"{date}T02:30:00{offset_after}" for date in following),
    ]


def test_lisbons_own_gap_and_overlap_at_0130():
    # Lisbon's gap is 01:00-02:00 on the spring day and its overlap 01:00-02:00 on the autumn one.
    assert fires("30 1 * * *", "Europe/Lisbon", "2026-03-28T12:00", 2) == [
        "2026-03-29T02:00:00+01:00",
        "2026-03-30T01:30:00+01:00",
    ]
    assert fires("30 1 * * *", "Europe/Lisbon", "2026-10-24T12:00", 2) == [
        "2026-10-25T01:30:00+01:00",
        "2026-10-26T01:30:00+00:00",
    ]


def test_an_hourly_job_keeps_its_pace_in_real_time_across_the_change():
    # Not a fixed wall time: every hour of elapsed time, whatever the clock on the wall says.
    assert fires("0 * * * *", "America/New_York", "2026-03-08T00:30", 3) == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 3 L * *", ["2026-02-28", "2026-03-31", "2026-04-30"]),  # the last day of the month
        ("0 3 LW * *", ["2026-02-27", "2026-03-31", "2026-04-30"]),  # its last weekday (Feb 28 2026 is a Saturday)
        ("0 3 * * 5L", ["2026-02-27", "2026-03-27", "2026-04-24"]),  # the last Friday
        ("0 3 * * MON#2", ["2026-02-09", "2026-03-09", "2026-04-13"]),  # the second Monday
        # Day of month and day of week both given: either matches (Debian cron), so the 1st or a Monday.
        ("0 3 1 * MON", ["2026-02-01", "2026-02-02", "2026-02-09"]),
        # A star in either field makes it "and": the 1st only when it is... every Monday here.
        ("0 3 * * MON", ["2026-02-02", "2026-02-09", "2026-02-16"]),
    ],
)
def test_last_day_last_weekday_nth_weekday_and_day_or_weekday(expression, expected):
    shown = fires(expression, "UTC", "2026-01-31T12:00")
    assert [moment[:10] for moment in shown] == expected


@pytest.mark.parametrize(
    ("cron", "named"),
    [
        (Cron("61 * * * *"), "Bad minute"),
        (Cron("0 3 * *"), "Wrong number of fields"),
        (Cron("0 3 30 2 *"), "Bad day-of-month"),
        (Cron("0 3 * * *", "Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'"),
        (Cron("0 3 * * *", "../../etc/passwd"), "unknown time zone"),
        (Cron("0 3 * * *", ""), "unknown time zone"),
    ],
)
def test_what_cannot_be_scheduled_is_named(cron, named):
    with pytest.raises(ScheduleError, match=named):
        cron.check()


def test_a_ping_on_a_schedule_is_expected_at_the_next_time_then_grace():
    at = local("2026-03-28T03:05", "Europe/Lisbon")  # tonight's job reported at 03:05 local
    set_ = deadlines(at, None, 600, Cron("0 3 * * *", "Europe/Lisbon"))
    # Summer time starts that night: the next 03:00 local is 02:00 UTC.
    assert set_["late_at"] == set_["due_at"] == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert set_["deadline"] == set_["late_at"] + timedelta(seconds=600)
    assert next_expected(at, 60, None) == at + timedelta(seconds=60) and next_expected(at, None, None) is None


async def test_a_schedule_is_validated_at_the_edge_and_replaces_the_interval(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, schedule="0 3 * * *", tz="Europe/Lisbon")
    assert (created["schedule"], created["tz"], created["heartbeat_interval_seconds"]) == (
        "0 3 * * *",
        "Europe/Lisbon",
        None,
    )
    for fields, field, words in (
        ({"schedule": "0 25 * * *"}, "schedule", "Bad hour"),
        ({"schedule": "every day"}, "schedule", "invalid cron expression"),
        ({"schedule": "0 3 * * *", "tz": "Europe/Atlantis"}, "tz", "unknown time zone 'Europe/Atlantis'"),
        ({"schedule": "0 3 * * *", "heartbeat_interval_seconds": 60}, "(body)", "not both"),
        ({"schedule": "0 3 * * * " * 40}, "schedule", "at most 200"),
    ):
        status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "x", **fields})
        assert status == 400 and body["error"]["code"] == "invalid_request", (fields, body)
        assert body["error"]["field"] == field and words in body["error"]["message"], (fields, body)
    # An interval given in a PATCH replaces the schedule, and a schedule the interval.
    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"heartbeat_interval_seconds": 60}
    )
    assert status == 200 and patched["schedule"] is None and patched["heartbeat_interval_seconds"] == 60
    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"schedule": "*/5 * * * *"}
    )
    assert status == 200 and patched["schedule"] == "*/5 * * * *" and patched["heartbeat_interval_seconds"] is None
    status, body, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"schedule": "0 3 * * *", "tz": "Nowhere/Land"}
    )
    assert status == 400 and body["error"]["field"] == "tz"
