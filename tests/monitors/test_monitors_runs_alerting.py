"""Job runs and schedules under the alert rules, against a real ingest, heartbeat, RabbitMQ and MongoDB:
a cron monitor's missed runs counted by down_after, the job runner's pings counted by the thresholds,
an unfinished run as one failure (and silenced by maintenance), and every ping form signed."""

from datetime import datetime, timedelta

import test_monitors_alerting as alerting
import test_monitors_heartbeat as racing

from hookyard_common.monitors.history import FLIPS
from monitor_helpers import EventTap, create_monitor, monitor, ping

world = racing.world
heartbeats = racing.heartbeats
SECRET, signed = alerting.SECRET, alerting.signed


def _at(shown: dict, name: str) -> datetime:
    return datetime.fromisoformat(shown[name])


async def test_a_cron_monitor_with_down_after_2_is_late_then_down_only_after_its_second_missed_run(world):
    clock, ingest, key, heartbeat = world
    # Uneven gaps (15 then 45 minutes): the second run's time can only come from the schedule.
    created = await create_monitor(ingest, key, schedule="0,15 * * * *", grace_seconds=60, down_after=2)
    await ping(ingest, created["token"])
    await heartbeat.settled()
    first_run = _at(await monitor(ingest, key, created["id"]), "late_at")
    assert first_run.minute in (0, 15) and first_run.second == 0
    second_run = first_run + timedelta(minutes=15 if first_run.minute == 0 else 45)

    clock.offset = first_run + timedelta(seconds=61) - datetime.now(first_run.tzinfo)  # past the grace
    await heartbeat.scan()  # late, then (one missed run of two) it waits for the next run
    await heartbeat.scan()
    shown = await monitor(ingest, key, created["id"])
    assert shown["state"] == "late" and shown["consecutive_failures"] == 1
    assert _at(shown, "deadline") == second_run + timedelta(seconds=60)
    assert _at(shown, "late_at") == first_run  # still expected since the first run

    clock.offset = second_run + timedelta(seconds=55) - datetime.now(first_run.tzinfo)
    assert (await heartbeat.scan()).flipped == 0
    clock.advance(10)
    assert (await heartbeat.scan()).flipped == 1
    shown = await monitor(ingest, key, created["id"])
    assert shown["state"] == "down" and shown["consecutive_failures"] == 2


async def test_fail_and_exit_statuses_count_for_the_thresholds_and_start_and_log_do_not(world):
    clock, ingest, key, _ = world
    created = await create_monitor(ingest, key, down_after=2, up_after=2)
    token = created["token"]

    async def state_after(path: str) -> str:
        status, answer = await ping(ingest, token, path)
        assert status == 200, answer
        return answer["monitor"]["state"]

    assert await state_after("/0") == "up"
    assert await state_after("/fail") == "up"  # 1 failure of 2
    assert [await state_after(p) for p in ("/start", "/log")] == ["up", "up"]  # neither: the run goes on
    assert (await monitor(ingest, key, created["id"]))["consecutive_failures"] == 1
    assert await state_after("/3") == "down"  # exit status 3: the 2nd failure in a row
    assert await state_after("/0") == "down"  # 1 success of 2
    assert [await state_after(p) for p in ("/start", "/log")] == ["down", "down"]
    assert await state_after("/0") == "up"
    shown = await monitor(ingest, key, created["id"])
    assert shown["consecutive_successes"] == 2 and shown["consecutive_failures"] == 0
    assert await state_after("/fail") == "up" and await state_after("/0") == "up"  # a success ends the failures
    assert await state_after("/fail") == "up"


async def test_an_unfinished_run_is_one_failure_and_its_alert_says_why_from_the_real_pings(world, settings):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=3600, grace_seconds=60, down_after=2)
    token = created["token"]
    async with EventTap(settings.amqp_url) as tap:
        await ping(ingest, token, "/start")
        clock.advance(12.5)
        await ping(ingest, token, "/0", method="POST", data=b"backup ok: 3 GB")
        await ping(ingest, token, "/start")
        await heartbeat.settled()
        clock.advance(61)
        assert (await heartbeat.scan()).flipped == 1  # the first overrun: late, 1 failure of 2
        shown = await monitor(ingest, key, created["id"])
        assert shown["state"] == "late" and shown["consecutive_failures"] == 1
        await ping(ingest, token, "/start", method="POST", data="é".encode() * 1500)
        await heartbeat.settled()
        clock.advance(61)
        assert (await heartbeat.scan()).flipped == 1  # the second: down
        await tap.take(3)
    assert tap.of(created["id"]) == ["monitor.up", "monitor.late", "monitor.down"]
    late, down = (e["payload"] for e in tap.events[1:])
    assert late["reason"] == down["reason"] == "run_overdue"
    assert down["why"].startswith("backup job is down: a run started but did not finish: started at ")
    assert down["why"].endswith("failure 2 of 2")
    assert down["last_ping_kind"] == "start" and 12.5 <= down["last_run_seconds"] < 14  # moved 12.5 s, plus real time
    assert down["last_body"] == "é" * 1000 and down["last_body_truncated"] is True
    assert (await monitor(ingest, key, created["id"]))["run_started_at"] is not None


async def test_an_unfinished_run_in_maintenance_is_recorded_and_not_alerted(world, settings):
    clock, ingest, key, heartbeat = world
    now = clock().replace(microsecond=0)
    window = {"start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    held = await create_monitor(ingest, key, name="held", heartbeat_interval_seconds=None, maintenance=[window])
    outside = await create_monitor(ingest, key, name="outside", heartbeat_interval_seconds=None)
    async with EventTap(settings.amqp_url) as tap:
        for each in (held, outside):
            await ping(ingest, each["token"], "/start")
        await heartbeat.settled()
        clock.advance(61)
        assert (await heartbeat.scan()).flipped == 2
        await tap.take(1)
    assert {(await monitor(ingest, key, m["id"]))["state"] for m in (held, outside)} == {"down"}
    assert tap.of(outside["id"]) == ["monitor.down"] and tap.of(held["id"]) == []
    flip = await heartbeat.store[FLIPS].find_one({"monitor_id": held["id"]})
    assert flip["maintenance"] is True and flip["reason"] == "run_overdue"


async def test_every_ping_form_is_signed_by_ping_key_too_and_only_bare_heartbeats_may_skip_it(world):
    clock, ingest, key, _ = world
    status, answer, _ = await ingest.call("POST", "/v1/ping-key", token=key)
    assert status == 201, answer
    pk = answer["ping_key"]
    lenient = await create_monitor(ingest, key, slug="nightly", secret=SECRET, unsigned_heartbeats=True)
    strict = await create_monitor(ingest, key, name="strict", slug="strict", secret=SECRET)
    forms = ("/start", "/log", "/fail", "/0", "/3", "/up")
    for address in (lenient["token"], f"{pk}/nightly"):
        for form in forms:
            status, answer = await ping(ingest, address, form)
            assert status == 401 and answer["error"]["code"] == "invalid_signature", (address, form)
            status, answer = await ping(ingest, address, form, headers=signed(clock, what=form.lstrip("/")))
            assert status == 200, (address, form, answer)
        assert (await ping(ingest, address))[0] == 200  # the bare heartbeat, by token or by slug
    status, answer = await ping(ingest, pk, "/strict")  # a slug ping is held to the monitor's secret
    assert status == 401 and answer["error"]["code"] == "invalid_signature"
    assert (await ping(ingest, pk, "/strict", headers=signed(clock)))[0] == 200
    stale = signed(clock, at=clock().timestamp() - 400, what="start")
    status, answer = await ping(ingest, f"{pk}/strict", "/start", headers=stale)
    assert status == 401 and answer["error"]["code"] == "stale_timestamp"
    assert (await monitor(ingest, key, strict["id"]))["last_ping_kind"] == "success"
