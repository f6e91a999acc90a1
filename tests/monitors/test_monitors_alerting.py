"""Alerting that does not cry wolf, against a real ingest, heartbeat workers, RabbitMQ and MongoDB:
thresholds, reminders while down, flap damping, maintenance windows, alerts that say why, and signed
ping timestamps. Racing heartbeat workers announce each of them once."""

import asyncio
import hashlib
import hmac
from datetime import datetime, timedelta

import test_monitors_heartbeat as racing

from hookyard_common.monitors.history import FLIPS
from monitor_helpers import EventTap, create_monitor, listed, monitor, ping

# The heartbeat tests' fixtures (one ingest and movable clock, in-process heartbeat workers): pytest
# finds a fixture by its name in the module.
world, heartbeats, flips_of = racing.world, racing.heartbeats, racing.flips_of
SECRET = "a-shared-secret-0001"


def signed(clock, body: bytes = b"", at: float | None = None, secret: str = SECRET, what: str = "") -> dict:
    """The headers of a ping signed at `at` (now), saying `what` after its token (kind and query)."""
    stamp = str(int(clock().timestamp() if at is None else at))
    mac = hmac.new(secret.encode(), f"{stamp}.{what}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Hookyard-Timestamp": stamp, "X-Webhook-Signature": mac}


async def race(workers, rounds: int = 3) -> list:
    results = []
    for _ in range(rounds):
        results += await asyncio.gather(*(w.scan() for w in workers))
    return results


# ------------------------------------------------------------------ signed pings


async def test_a_signed_ping_carries_its_time_and_a_replay_is_refused(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, secret=SECRET)
    assert created["legacy_signature"] is False and created["unsigned_heartbeats"] is False
    token = created["token"]
    body = b'{"status": "down", "message": "disk full"}'
    headers = {"Content-Type": "application/json", **signed(clock, body)}
    status, answer = await ping(ingest, token, method="POST", data=body, headers=headers)
    assert status == 200 and answer["monitor"]["state"] == "down"

    clock.advance(301)  # past HOOKYARD_SIGNATURE_TOLERANCE_SECONDS (300): the captured ping is dead
    status, answer = await ping(ingest, token, method="POST", data=body, headers=headers)
    assert status == 401 and answer["error"]["code"] == "stale_timestamp" and "s old" in answer["error"]["message"]
    future = signed(clock, at=clock().timestamp() + 400)
    status, answer = await ping(ingest, token, headers=future)
    assert status == 401 and answer["error"]["code"] == "stale_timestamp" and "future" in answer["error"]["message"]

    body_only = {"X-Webhook-Signature": hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()}
    status, answer = await ping(ingest, token, headers=body_only)
    assert status == 401 and answer["error"]["code"] == "missing_timestamp"
    for stamp in ("soon", "-5", "1e9", "١٢٣", "9" * 40):
        status, answer = await ping(ingest, token, headers={**signed(clock), "X-Hookyard-Timestamp": stamp})
        assert status == 401 and answer["error"]["code"] == "invalid_timestamp", stamp
    status, answer = await ping(ingest, token, headers=signed(clock, secret="not-the-secret-000"))
    assert status == 401 and answer["error"]["code"] == "invalid_signature"
    # The timestamp is inside the MAC: moving it breaks the signature.
    moved = {**signed(clock), "X-Hookyard-Timestamp": str(int(clock().timestamp()) - 1)}
    assert (await ping(ingest, token, headers=moved))[1]["error"]["code"] == "invalid_signature"
    status, answer = await ping(ingest, token, headers=signed(clock))
    assert status == 200 and answer["monitor"]["state"] == "up"

    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 12)
    outcomes = [c["outcome"] for c in checks]
    assert outcomes[0] == "accepted" and outcomes[-1] == "accepted"
    assert outcomes.count("stale_timestamp") == 2 and outcomes.count("invalid_timestamp") == 5


async def test_unsigned_heartbeats_let_a_bare_heartbeat_in_and_nothing_else(world):
    clock, ingest, key, _ = world
    strict = await create_monitor(ingest, key, name="strict", secret=SECRET)
    lenient = await create_monitor(ingest, key, name="lenient", secret=SECRET, unsigned_heartbeats=True)
    status, answer = await ping(ingest, strict["token"])
    assert status == 401 and answer["error"]["code"] == "invalid_signature" and "missing" in answer["error"]["message"]

    token = lenient["token"]
    for method in ("GET", "POST"):  # seed 004's heartbeat GET, and an empty POST
        assert (await ping(ingest, token, method=method))[0] == 200, method
    refused = [
        ("/down", "GET", {}),
        ("?status=down", "GET", {}),
        ("?msg=all%20good", "GET", {}),
        ("", "POST", {"data": b'{"status": "down"}', "headers": {"Content-Type": "application/json"}}),
        ("", "GET", {"headers": signed(clock, secret="not-the-secret-000")}),  # a signature sent is checked
    ]
    for path, method, extra in refused:
        status, answer = await ping(ingest, token, path, method=method, **extra)
        assert status == 401 and answer["error"]["code"] == "invalid_signature", path
    # What the URL says is signed: a captured heartbeat replayed as `/down` within the tolerance is refused.
    heartbeat = signed(clock)
    assert (await ping(ingest, token, headers=heartbeat))[0] == 200
    status, answer = await ping(ingest, token, "/down", headers=heartbeat)
    assert status == 401 and answer["error"]["code"] == "invalid_signature"
    status, answer = await ping(ingest, token, "/down?msg=disk%20full", headers=signed(clock, what="down"))
    assert status == 401 and answer["error"]["code"] == "invalid_signature"  # the query is signed too
    saying = "down?msg=disk%20full"
    status, answer = await ping(ingest, token, f"/{saying}", headers=signed(clock, what=saying))
    assert status == 200 and answer["monitor"]["state"] == "down"
    assert (await monitor(ingest, key, lenient["id"]))["unsigned_heartbeats"] is True


# ------------------------------------------------------------------ thresholds


async def test_down_after_n_failures_and_up_after_m_successes_even_when_pings_race(world, settings):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, down_after=3, up_after=2)
    token = created["token"]
    async with EventTap(settings.amqp_url) as tap:
        await ping(ingest, token)
        for _ in range(2):
            assert (await ping(ingest, token, "/down"))[1]["monitor"]["state"] == "up"
        assert (await ping(ingest, token))[1]["monitor"]["state"] == "up"  # a success ends the run
        shown = await monitor(ingest, key, created["id"])
        assert shown["consecutive_failures"] == 0 and shown["consecutive_successes"] == 1
        # Ten failures at once: the third of the run, whichever it is, makes the one change.
        answers = await asyncio.gather(*(ping(ingest, token, "/down") for _ in range(10)))
        assert sum(a[1]["changed"] for a in answers) == 1
        assert (await ping(ingest, token))[1]["monitor"]["state"] == "down"  # 1 of 2 successes
        assert (await ping(ingest, token))[1]["monitor"]["state"] == "up"
        await heartbeat.settled()
        await tap.take(3)
    assert tap.of(created["id"]) == ["monitor.up", "monitor.down", "monitor.up"]
    down = tap.events[1]["payload"]
    # Of racing failures the 3rd, or one that read the monitor before the 3rd's change, makes it.
    said, counted = down["why"].removesuffix(" in a row)").split(" (")
    assert said == "backup job is down: its ping said down" and int(counted) >= 3, down["why"]


async def test_down_after_n_missed_periods_stays_late_between_them(world, heartbeats, settings):
    clock, ingest, key, first = world
    second, third = await heartbeats(clock, count=2, batch=3)
    jobs = [
        await create_monitor(ingest, key, name=f"job {n}", heartbeat_interval_seconds=60, grace_seconds=0, down_after=3)
        for n in range(6)
    ]
    async with EventTap(settings.amqp_url) as tap:
        for job in jobs:
            await ping(ingest, job["token"])
        await first.settled()
        pinged = await monitor(ingest, key, jobs[0]["id"])
        clock.advance(61)
        assert sum(r.flipped for r in await race([first, second, third])) == len(jobs)  # late, not down
        clock.advance(60)
        await race([first, second, third])
        assert {(await monitor(ingest, key, j["id"]))["state"] for j in jobs} == {"late"}
        clock.advance(60)
        assert sum(r.flipped for r in await race([first, second, third])) == len(jobs)
        await tap.take(3 * len(jobs))
    for job in jobs:
        assert tap.of(job["id"]) == ["monitor.up", "monitor.late", "monitor.down"], job["name"]
    [down] = [
        e["payload"]
        for e in tap.events
        if e["event_type"] == "monitor.down" and e["payload"]["monitor_id"] == jobs[0]["id"]
    ]
    expected_by = datetime.fromisoformat(pinged["late_at"])
    assert datetime.fromisoformat(down["missed_since"]) == expected_by
    assert datetime.fromisoformat(down["last_ping_at"]) == datetime.fromisoformat(pinged["last_ping_at"])
    assert down["why"].endswith(f"expected by {expected_by.isoformat(timespec='seconds')} (3 periods missed)")


# ------------------------------------------------------------------ reminders


async def test_a_monitor_still_down_is_reminded_once_per_interval_by_racing_workers(world, heartbeats, settings):
    clock, ingest, key, first = world
    second, third = await heartbeats(clock, count=2)
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=None, renotify_seconds=60)
    quiet = await create_monitor(ingest, key, name="no reminders", heartbeat_interval_seconds=None)
    async with EventTap(settings.amqp_url) as tap:
        for job in (created, quiet):
            await ping(ingest, job["token"], "/down?msg=queue%20stuck")
        await first.settled()
        reminded = []
        for step in (30, 31, 60, 250):  # not yet, one, one, and one (not four) after a long gap
            clock.advance(step)
            reminded.append(sum(r.reminded for r in await race([first, second, third])))
        assert reminded == [0, 1, 1, 1]
        # A new interval counts from now.
        status, _, _ = await ingest.call(
            "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"renotify_seconds": 600}
        )
        assert status == 200
        clock.advance(599)
        assert sum(r.reminded for r in await race([first, second, third], rounds=1)) == 0
        clock.advance(2)
        assert sum(r.reminded for r in await race([first, second, third], rounds=1)) == 1
        await ping(ingest, created["token"])  # up: reminders stop
        await first.settled()
        clock.advance(700)
        assert sum(r.reminded for r in await race([first, second, third])) == 0
        await tap.take(7)
    assert tap.of(created["id"]) == ["monitor.down"] * 5 + ["monitor.up"]
    assert tap.of(quiet["id"]) == ["monitor.down"]
    reminder = [e for e in tap.events if e["payload"]["monitor_id"] == created["id"]][1]
    assert reminder["payload"]["reason"] == "reminder" and reminder["severity"] == "high"
    assert reminder["payload"]["why"].startswith("backup job is still down, since ")
    assert len(await flips_of(ingest, key, created["id"], 2)) == 2  # reminders are no state changes


# ------------------------------------------------------------------ flapping


async def test_a_flapping_monitor_raises_one_flapping_then_one_stable(world, heartbeats, settings):
    clock, ingest, key, first = world
    second, third = await heartbeats(clock, count=2)
    created = await create_monitor(
        ingest, key, heartbeat_interval_seconds=None, flap_threshold=3, flap_window_seconds=600
    )
    token = created["token"]
    async with EventTap(settings.amqp_url) as tap:
        for path in ("", "/down", "", "/down", "", "/down", "/degraded"):
            await ping(ingest, token, path)
            await first.settled()
        shown = await monitor(ingest, key, created["id"])
        assert shown["flapping"] is True and shown["state"] == "degraded"
        clock.advance(599)
        assert sum(r.stabilized for r in await race([first, second, third])) == 0
        clock.advance(2)  # a whole window without a change
        assert sum(r.stabilized for r in await race([first, second, third])) == 1
        assert (await monitor(ingest, key, created["id"]))["flapping"] is False
        await ping(ingest, token)  # alerts as usual again
        await first.settled()
        await tap.take(6)
    assert tap.of(created["id"]) == [
        "monitor.up",
        "monitor.down",
        "monitor.up",
        "monitor.flapping",
        "monitor.stable",
        "monitor.up",
    ]
    flapping, stable = tap.events[3], tap.events[4]
    assert flapping["payload"]["status"] == "down" and flapping["severity"] == "medium"
    assert flapping["payload"]["why"].startswith("backup job is flapping: it changed state more than 3 times")
    assert stable["payload"]["status"] == "degraded" and stable["payload"]["reason"] == "stable"
    assert len(await flips_of(ingest, key, created["id"], 8)) == 8  # every change is still recorded


# ------------------------------------------------------------------ maintenance


async def test_changes_in_a_maintenance_window_are_recorded_and_not_alerted(world, heartbeats, settings):
    clock, ingest, key, first = world
    second, third = await heartbeats(clock, count=2, batch=4)
    now = clock().replace(microsecond=0)  # as stored: MongoDB keeps milliseconds
    window = {"start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=30)).isoformat()}
    jobs = [
        await create_monitor(
            ingest, key, name=f"job {n}", heartbeat_interval_seconds=60, grace_seconds=0, maintenance=[window]
        )
        for n in range(8)
    ]
    outside = await create_monitor(ingest, key, name="outside", heartbeat_interval_seconds=60, grace_seconds=0)
    shown = await monitor(ingest, key, jobs[0]["id"])
    assert shown["in_maintenance"] is True and shown["maintenance_ends_at"] == window["end"]
    async with EventTap(settings.amqp_url) as tap:
        for job in [*jobs, outside]:
            await ping(ingest, job["token"])
        await first.settled()
        clock.advance(61)
        assert sum(r.flipped for r in await race([first, second, third])) == len(jobs) + 1
        assert {(await monitor(ingest, key, j["id"]))["state"] for j in jobs} == {"down"}
        clock.advance(29 * 60 + 45 - 61)
        await ping(ingest, jobs[1]["token"])  # back up before the window ends: nothing to announce
        await first.settled()
        clock.advance(45)  # the window is over: a monitor it left down is announced, once
        assert sum(r.after_maintenance for r in await race([first, second, third])) == len(jobs) - 1
        await ping(ingest, jobs[0]["token"])  # and alerts resume
        await first.settled()
        await tap.take(2 + len(jobs))
    assert tap.of(outside["id"]) == ["monitor.up", "monitor.down"]
    assert tap.of(jobs[0]["id"]) == ["monitor.down", "monitor.up"]
    assert tap.of(jobs[1]["id"]) == []
    assert len(tap.events) == 2 + len(jobs)
    held = [e for e in tap.events if e["payload"]["monitor_id"] == jobs[0]["id"]][0]
    assert held["payload"]["reason"] == "maintenance_over" and "during maintenance" in held["payload"]["why"]
    assert await first.store[FLIPS].count_documents({"maintenance": True}) == 2 * len(jobs) + 1
    flips = await listed(ingest, key, f"/v1/monitors/{jobs[0]['id']}/flips", 3)
    assert [f["maintenance"] for f in flips] == [False, True, True]
    status, stats, _ = await ingest.call("GET", f"/v1/monitors/{jobs[0]['id']}/stats", token=key)
    assert status == 200 and stats["maintenance_flips_30d"] == 2 and stats["in_maintenance"] is False


async def test_a_recurring_window_is_shown_and_bad_windows_are_named(ingest):
    key = await ingest.tenant()
    every_minute = {"cron": "* * * * *", "tz": "Europe/Lisbon", "duration_seconds": 60}
    created = await create_monitor(ingest, key, maintenance=[every_minute])
    assert created["maintenance"] == [every_minute] and created["in_maintenance"] is True
    cases = [
        ({"cron": "0 3 * *", "duration_seconds": 60}, "maintenance.0.recurring.cron", "invalid cron"),
        ({"cron": "0 3 30 2 *", "duration_seconds": 60}, "maintenance.0.recurring.cron", "invalid cron"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus", "duration_seconds": 60}, "maintenance.0.recurring.tz", "zone"),
        ({"cron": "0 3 * * *", "tz": "../../etc/passwd", "duration_seconds": 60}, "maintenance.0.recurring.tz", "zone"),
        ({"cron": "0 3 * * *", "duration_seconds": 5}, "maintenance.0.recurring.duration_seconds", ""),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "maintenance.0.one_off", "after start"),
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}, "maintenance.0.one_off.start", "timezone"),
    ]
    for window, field, says in cases:
        status, body, _ = await ingest.call(
            "POST", "/v1/monitors", token=key, json={"name": "x", "maintenance": [window]}
        )
        assert status == 400 and body["error"]["code"] == "invalid_request", (window, body)
        problems = {p["field"]: p["problem"] for p in body["error"]["problems"]}
        assert field in problems and says in problems[field], (window, problems)
    for fields in ({"down_after": 0}, {"flap_threshold": 1}, {"renotify_seconds": 5}, {"maintenance": [{}] * 11}):
        status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "x", **fields})
        assert status == 400 and body["error"]["code"] == "invalid_request", fields
    status, body, _ = await ingest.call("PATCH", f"/v1/monitors/{created['id']}", token=key, json={"down_after": None})
    assert status == 400 and body["error"]["field"] == "down_after"

    # Another tenant can neither read nor change these settings.
    other = await ingest.tenant("other")
    status, body, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=other, json={"maintenance": [], "legacy_signature": True}
    )
    assert status == 404 and body["error"]["code"] == "unknown_monitor"
    shown = await monitor(ingest, key, created["id"])
    assert shown["maintenance"] == [every_minute] and shown["legacy_signature"] is False


# ------------------------------------------------------------------ why


async def test_an_alert_carries_the_last_body_and_run_duration(world, settings):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=60, grace_seconds=0)
    # A job run (start, then its success with the job's output): the alert reads what the pings stored.
    await ping(ingest, created["token"], "/start")
    clock.advance(12.5)
    await ping(ingest, created["token"], "/0", method="POST", data="é".encode() * 1500)
    await heartbeat.settled()
    async with EventTap(settings.amqp_url) as tap:
        clock.advance(61)
        await heartbeat.scan()
        [event] = await tap.take(1)
    data = event["payload"]
    assert data["last_body"] == "é" * 1000 and data["last_body_truncated"] is True
    assert 12.5 <= data["last_run_seconds"] < 14 and data["last_ping_kind"] == "success"
    assert data["why"].startswith("backup job is down: no ping since ") and data["missed_since"]
