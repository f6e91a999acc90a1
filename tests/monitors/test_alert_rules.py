"""The alert rules' pure logic, no I/O: maintenance windows across daylight saving, flap damping,
thresholds, what an alert says, and the signed string of a ping."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from hookyard_common.monitors import alert_context, flapping, maintenance, thresholds
from hookyard_common.monitors.alerting import AlertState
from hookyard_common.monitors.schedule import Cron
from hookyard_common.operational_events import MONITOR_DOWN, MONITOR_FLAPPING, MONITOR_UP
from hookyard_common.schemas import MonitorState
from hookyard_ingest.monitors import ping_auth


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ------------------------------------------------------------------ maintenance


@pytest.mark.parametrize(
    ("window", "inside", "outside", "ends"),
    [
        # New York springs forward at 02:00: the 02:30 window opens at 03:00 EDT (07:00 UTC), for its hour.
        (("30 2 * * *", "America/New_York"), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 8)),
        # ... and falls back at 02:00: 02:30 comes once, in EST (07:30 UTC).
        (("30 2 * * *", "America/New_York"), utc(2026, 11, 1, 7, 45), utc(2026, 11, 1, 6, 45), utc(2026, 11, 1, 8, 30)),
        # Lisbon springs forward at 01:00: the 01:30 window opens at 02:00 WEST (01:00 UTC).
        (("30 1 * * *", "Europe/Lisbon"), utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 2)),
        # ... and falls back at 02:00: 01:30 happens twice, the window opens only at the first (00:30 UTC).
        (("30 1 * * *", "Europe/Lisbon"), utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 35), utc(2026, 10, 25, 1, 30)),
        # Day of month and day of week: either matches (cron's rule), here the 1st or any Sunday.
        (("0 0 1 * SUN", "UTC"), utc(2026, 12, 6, 0, 30), utc(2026, 12, 7, 0, 30), utc(2026, 12, 6, 1)),
        # The last day of the month.
        (("0 22 L * *", "UTC"), utc(2026, 2, 28, 22, 59), utc(2026, 2, 27, 22, 30), utc(2026, 2, 28, 23)),
    ],
)
def test_a_recurring_window_follows_its_zone_across_daylight_saving(window, inside, outside, ends):
    cron, tz = window
    [stored] = [maintenance.RecurringWindow(cron=cron, tz=tz, duration_seconds=3600).model_dump()]
    assert maintenance.active([stored], inside) == stored
    assert maintenance.active([stored], outside) is None
    assert maintenance.ends(stored, inside) == ends


def test_a_one_off_window_holds_from_its_start_until_its_end():
    stored = maintenance.OneOffWindow(start=utc(2026, 5, 1, 10), end=utc(2026, 5, 1, 12)).model_dump()
    assert maintenance.active([stored], utc(2026, 5, 1, 10)) == stored
    assert maintenance.active([stored], utc(2026, 5, 1, 11, 59)) == stored
    assert maintenance.active([stored], utc(2026, 5, 1, 12)) is None
    assert maintenance.active([stored], utc(2026, 5, 1, 9, 59)) is None
    assert maintenance.active([], utc(2026, 5, 1, 11)) is None


# ------------------------------------------------------------------ flapping


def test_the_change_past_the_threshold_is_announced_as_flapping_and_later_ones_are_damped():
    start, window = utc(2026, 1, 1), 600
    alerting = AlertState(flap_threshold=3, flap_window_seconds=window)
    for minute in range(3):
        at = start + timedelta(minutes=minute)
        damping = flapping.damp(alerting, at, MONITOR_DOWN)
        assert damping.event_type == MONITOR_DOWN and not damping.damped
        alerting = AlertState(**{**vars(alerting), "recent_flips": (*alerting.recent_flips, at)})
    fourth = flapping.damp(alerting, start + timedelta(minutes=3), MONITOR_UP)
    assert fourth.event_type == MONITOR_FLAPPING and fourth.damped
    assert fourth.update["$set"]["stable_at"] == start + timedelta(minutes=3, seconds=window)
    # Changes older than the window do not count.
    late = flapping.damp(alerting, start + timedelta(minutes=12), MONITOR_UP)
    assert late.event_type == MONITOR_UP
    flapping_now = AlertState(flap_threshold=3, flapping_since=start)
    assert flapping.damp(flapping_now, start, MONITOR_UP).event_type is None
    assert flapping.damp(AlertState(), start, MONITOR_UP).update == {}  # damping off: nothing kept


# ------------------------------------------------------------------ thresholds


def test_thresholds_count_consecutive_signals():
    alerting = AlertState(down_after=2, up_after=3)
    once = thresholds.counted(alerting, MonitorState.down)
    assert not thresholds.confirmed(MonitorState.up, MonitorState.down, once)
    twice = thresholds.counted(once, MonitorState.down)
    assert thresholds.confirmed(MonitorState.up, MonitorState.down, twice)
    recovering = thresholds.counted(twice, MonitorState.up)
    assert recovering.failure_streak == 0 and recovering.success_streak == 1
    assert not thresholds.confirmed(MonitorState.down, MonitorState.up, recovering)
    assert thresholds.confirmed(MonitorState.late, MonitorState.up, recovering)  # late is no trouble
    assert thresholds.counted(twice, MonitorState.degraded).failure_streak == 0
    assert thresholds.streak_update(None) == {}

    deadline = utc(2026, 1, 1)
    waiting = thresholds.further_period(AlertState(down_after=3, interval_seconds=60), deadline)
    assert waiting == {
        "deadline": deadline + timedelta(seconds=60),
        "due_at": deadline + timedelta(seconds=60),
        "failure_streak": 1,
    }
    assert thresholds.further_period(AlertState(down_after=3, failure_streak=2, interval_seconds=60), deadline) is None


def test_a_cron_monitors_missed_run_waits_for_the_schedules_next_time_in_its_zone():
    # 02:30 in New York, with 10 minutes of grace: the run of 7 March (07:30 UTC) is missed at 07:40 UTC;
    # the next is 8 March, when 02:30 does not exist (spring forward) and it fires at 03:00 EDT (07:00 UTC).
    nightly = AlertState(down_after=2, cron=Cron("30 2 * * *", "America/New_York"), grace_seconds=600)
    waiting = thresholds.further_period(nightly, utc(2026, 3, 7, 7, 40))
    assert waiting == {"deadline": utc(2026, 3, 8, 7, 10), "due_at": utc(2026, 3, 8, 7, 10), "failure_streak": 1}
    assert thresholds.further_period(AlertState(down_after=2), utc(2026, 3, 7)) is None  # push-only: no period


# ------------------------------------------------------------------ what an alert says


def test_an_alert_says_why_and_carries_a_truncated_body():
    monitor = {"_id": "mon_1", "name": "nightly backup", "last_body": "x" * 1001, "last_run_seconds": 3.5}
    entry = {"to": "down", "reason": "ping", "message": "disk full", "streak": 2, "event_type": MONITOR_DOWN}
    said = alert_context.details(monitor, entry)
    assert said["why"] == "nightly backup is down: its ping said down (2 in a row): disk full"
    assert len(said["last_body"]) == 1000 and said["last_body_truncated"] and said["last_run_seconds"] == 3.5
    missed = {"to": "down", "reason": "no_ping", "last_ping_at": utc(2026, 1, 1), "event_type": MONITOR_DOWN}
    quiet = alert_context.details({"_id": "mon_1", "name": "job", "missed_since": utc(2026, 1, 1, 0, 5)}, missed)
    assert quiet["why"] == "job is down: no ping since 2026-01-01T00:00:00+00:00, expected by 2026-01-01T00:05:00+00:00"
    assert quiet["last_body"] is None and not quiet["last_body_truncated"]


# ------------------------------------------------------------------ signed pings


def mac(body: bytes, stamp: str | None = None, what: str = "") -> str:
    signed = body if stamp is None else f"{stamp}.{what}.".encode() + body
    return hmac.new(b"secret-0123456789", signed, hashlib.sha256).hexdigest()


def test_the_signed_string_is_the_timestamp_what_the_url_says_and_the_body_within_the_tolerance():
    body, now = b'{"status": "up"}', 1_800_000_000

    def refused(presented: ping_auth.Presented, legacy: bool = False, what: str = "") -> str | None:
        refusal = ping_auth.refusal(b"secret-0123456789", what, body, presented, now, 300, legacy=legacy)
        return refusal.code if refusal else None

    stamp = str(now - 300)
    assert refused(ping_auth.Presented(mac(body, stamp), stamp)) is None
    assert refused(ping_auth.Presented(mac(body, stamp), stamp), legacy=True) is None
    late = str(now - 301)
    assert refused(ping_auth.Presented(mac(body, late), late)) == "stale_timestamp"
    early = str(now + 301)
    assert refused(ping_auth.Presented(mac(body, early), early)) == "stale_timestamp"
    assert refused(ping_auth.Presented(mac(body), None)) == "missing_timestamp"
    assert refused(ping_auth.Presented(mac(body), None), legacy=True) is None
    assert refused(ping_auth.Presented(None, None)) == "invalid_signature"
    assert refused(ping_auth.Presented(mac(body + b" ", stamp), stamp)) == "invalid_signature"
    assert refused(ping_auth.Presented(mac(body, stamp), " 1.5")) == "invalid_timestamp"
    saying = ping_auth.what_it_says("down", "msg=full")
    assert saying == "down?msg=full" and ping_auth.what_it_says(None, "") == ""
    assert refused(ping_auth.Presented(mac(body, stamp, saying), stamp), what=saying) is None
    assert refused(ping_auth.Presented(mac(body, stamp), stamp), what=saying) == "invalid_signature"  # replayed

    assert ping_auth.bare_heartbeat(None, {}, b"")
    assert ping_auth.bare_heartbeat(None, {"rid": "1"}, b"  ")
    assert not ping_auth.bare_heartbeat("down", {}, b"")
    assert not ping_auth.bare_heartbeat(None, {"msg": "x"}, b"")
    assert not ping_auth.bare_heartbeat(None, {}, b"{}")


def test_a_flapping_alert_reads_as_one_in_slack():
    from hookyard_common.delivery import chat_formats
    from hookyard_common.schemas import Event

    why = "api is flapping: it changed state more than 3 times within 600 s (now down)"
    payload = {"monitor_id": "mon_1", "monitor_name": "api", "status": "down", "message": None, "why": why}
    body = chat_formats.slack(Event(tenant_id="ten_1", event_type=MONITOR_FLAPPING, payload=payload))
    assert body["text"] == f"🔁 api is FLAPPING: {why}"
