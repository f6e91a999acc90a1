"""The heartbeat: silent monitors go late then down, once, however many scanners race, and the
alert reaches a subscribed endpoint through the real dispatcher."""

import asyncio
import json
import signal
import time
from datetime import datetime, timedelta

import pytest

import monitor_helpers
from helpers import start_service
from hookyard_cli.devstack import free_port
from hookyard_common.core.settings import Settings
from hookyard_common.monitors.history import FLIPS
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.monitors.states import Snapshot
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.schemas import MonitorState
from hookyard_common.store.client import Store
from hookyard_heartbeat.main import setup
from hookyard_heartbeat.scanner import ScanResult
from monitor_helpers import EventTap, MovableClock, create_monitor, listed, monitor, ping

heartbeats = monitor_helpers.heartbeats  # the fixture, shared with tests/migration


@pytest.fixture
async def world(start_ingest, heartbeats):
    """A tenant on an ingest and one heartbeat worker, both on one movable clock."""
    clock = MovableClock()
    ingest = await start_ingest(clock=clock)
    [heartbeat] = await heartbeats(clock)
    return clock, ingest, await ingest.tenant(), heartbeat


async def flips_of(ingest, key, monitor_id, count) -> list[tuple[str, str, str]]:
    flips = await listed(ingest, key, f"/v1/monitors/{monitor_id}/flips", count)
    # In the order they happened: ids sort by creation, while `at` mixes the ingest's real
    # time with the heartbeat's moved clock.
    return [(f["from"], f["to"], f["reason"]) for f in sorted(flips, key=lambda f: f["id"])]


async def test_a_silent_monitor_is_late_within_grace_then_down_then_up_again(world, settings):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=300, grace_seconds=60)
    async with EventTap(settings.amqp_url) as tap:
        await ping(ingest, created["token"])
        await heartbeat.settled()
        clock.advance(299)
        assert (await heartbeat.scan()).flipped == 0
        assert (await monitor(ingest, key, created["id"]))["state"] == "up"

        clock.advance(2)  # past the interval, within grace
        assert (await heartbeat.scan()).flipped == 1
        assert (await heartbeat.scan()).flipped == 0  # late once
        assert (await monitor(ingest, key, created["id"]))["state"] == "late"

        clock.advance(60)  # past interval + grace
        assert (await heartbeat.scan()).flipped == 1
        assert (await heartbeat.scan()).flipped == 0
        shown = await monitor(ingest, key, created["id"])
        assert shown["state"] == "down" and shown["deadline"] is None and shown["open_incident_id"]
        assert shown["status_message"].startswith("no ping since")

        await ping(ingest, created["token"])
        events = await tap.take(4)
    assert tap.of(created["id"]) == ["monitor.up", "monitor.late", "monitor.down", "monitor.up"]
    down = events[2]["payload"]
    assert down["reason"] == "no_ping" and down["previous_status"] == "late" and down["last_ping_at"]
    assert await flips_of(ingest, key, created["id"], 4) == [
        ("new", "up", "ping"),
        ("up", "late", "no_ping"),
        ("late", "down", "no_ping"),
        ("down", "up", "ping"),
    ]
    [incident] = await listed(ingest, key, f"/v1/monitors/{created['id']}/incidents", 1)
    assert incident["state"] == "resolved" and incident["reason"] == "no_ping"


async def test_a_ping_within_grace_brings_a_late_monitor_back_up(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=60, grace_seconds=60)
    await ping(ingest, created["token"])
    await heartbeat.settled()
    clock.advance(90)
    await heartbeat.scan()
    assert (await monitor(ingest, key, created["id"]))["state"] == "late"
    status, body = await ping(ingest, created["token"])
    assert body["monitor"]["state"] == "up" and body["changed"]
    clock.advance(50)  # the new deadline counts from this ping: not late yet
    assert (await heartbeat.scan()).flipped == 0


async def test_grace_degraded_pushed_down_new_paused_and_push_only_monitors(world, settings):
    clock, ingest, key, heartbeat = world
    no_grace = await create_monitor(ingest, key, name="no grace", heartbeat_interval_seconds=60, grace_seconds=0)
    degraded = await create_monitor(ingest, key, name="degraded", heartbeat_interval_seconds=60, grace_seconds=30)
    pushed_down = await create_monitor(ingest, key, name="pushed down", heartbeat_interval_seconds=60)
    never_pinged = await create_monitor(ingest, key, name="new", heartbeat_interval_seconds=60)
    paused = await create_monitor(ingest, key, name="paused", heartbeat_interval_seconds=60)
    push_only = await create_monitor(ingest, key, name="push only", heartbeat_interval_seconds=None)
    for created, path in (
        (no_grace, ""),
        (degraded, "/degraded"),
        (pushed_down, "/down"),
        (paused, ""),
        (push_only, ""),
    ):
        assert (await ping(ingest, created["token"], path))[0] == 200
    status, _, _ = await ingest.call("POST", f"/v1/monitors/{paused['id']}/pause", token=key)
    assert status == 200
    await heartbeat.settled()

    async with EventTap(settings.amqp_url) as tap:
        clock.advance(75)  # past every interval; within the degraded one's grace
        await heartbeat.scan()
        assert (await monitor(ingest, key, no_grace["id"]))["state"] == "down"  # no late without grace
        assert (await monitor(ingest, key, degraded["id"]))["state"] == "degraded"  # not marked late
        clock.advance(10 * 86_400)
        await heartbeat.scan()
        await tap.take(2)
    everyone = (no_grace, degraded, pushed_down, never_pinged, paused, push_only)
    states = {m["name"]: (await monitor(ingest, key, m["id"]))["state"] for m in everyone}
    assert states == {
        "no grace": "down",
        "degraded": "down",
        "pushed down": "down",
        "new": "new",
        "paused": "paused",
        "push only": "up",
    }
    assert tap.of(no_grace["id"]) == ["monitor.down"] and tap.of(degraded["id"]) == ["monitor.down"]
    assert len(tap.events) == 2  # the pushed-down monitor stays down silently
    # Nothing is left for the scanner: the index holds no due monitor.
    assert await heartbeat.store[COLLECTION].count_documents({"due_at": {"$exists": True}}) == 0


async def test_a_new_interval_moves_the_deadline(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=60, grace_seconds=10)
    await ping(ingest, created["token"])
    await heartbeat.settled()
    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/monitors/{created['id']}", token=key, json={"heartbeat_interval_seconds": 600}
    )
    assert status == 200 and patched["heartbeat_interval_seconds"] == 600
    assert patched["deadline"] == (await monitor(ingest, key, created["id"]))["deadline"]
    clock.advance(300)
    assert (await heartbeat.scan()).flipped == 0
    clock.advance(311)
    await heartbeat.scan()
    assert (await monitor(ingest, key, created["id"]))["state"] == "down"


async def test_the_scan_reads_due_monitors_from_the_deadline_index(settings):
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        await store.ensure_indexes(COLLECTIONS, Settings())
        plan = await store[COLLECTION].find({"due_at": {"$lte": MovableClock()()}}).sort("due_at", 1).explain()
        winning = plan["queryPlanner"]["winningPlan"]
        stages = json.dumps(winning)
        assert '"IXSCAN"' in stages and '"indexName": "due"' in stages and "COLLSCAN" not in stages
    finally:
        await store.close()


async def test_three_racing_heartbeat_workers_flip_and_alert_each_change_once(world, heartbeats, settings):
    clock, ingest, key, third = world
    # Two more workers on connections of their own, with small batches so they interleave over many queries.
    first, second = await heartbeats(clock, count=2, batch=7)
    monitors = [
        await create_monitor(ingest, key, name=f"job {n}", heartbeat_interval_seconds=60, grace_seconds=60)
        for n in range(40)
    ]
    async with EventTap(settings.amqp_url) as tap:
        for created in monitors:
            assert (await ping(ingest, created["token"]))[0] == 200
        await first.settled()
        flipped = 0
        for step in (61, 60):
            clock.advance(step)
            for _ in range(3):
                results = await asyncio.gather(first.scan(), second.scan(), third.scan())
                flipped += sum(r.flipped for r in results)
        await tap.take(3 * len(monitors))
    assert flipped == 2 * len(monitors)
    for created in monitors:
        assert tap.of(created["id"]) == ["monitor.up", "monitor.late", "monitor.down"], created["name"]
    assert len(tap.events) == 3 * len(monitors)
    assert await first.store[FLIPS].count_documents({}) == 3 * len(monitors)


async def test_a_ping_landing_between_the_scans_read_and_its_flip_wins(world, settings):
    """The scan read a monitor past its deadline and would flip it down; a ping lands before the
    scan's write. The write is conditional on the deadline it read, so the ping wins: no flip.
    The interleaving is made, not hoped for: the scan's read, the ping, then the scan's write."""
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=60, grace_seconds=0)
    async with EventTap(settings.amqp_url) as tap:
        await ping(ingest, created["token"])
        await heartbeat.settled()
        clock.advance(61)  # past interval + grace: down is due
        read = await heartbeat.store[COLLECTION].find_one({"_id": created["id"]}, {**Snapshot.FIELDS, "due_at": 1})
        assert (await ping(ingest, created["token"]))[0] == 200  # lands after the read
        result = ScanResult()
        await heartbeat.scanner._expire(read, clock(), result)  # noqa: SLF001 - the scan's write, on what it read
        assert result.flipped == 0, "the scan flipped a monitor that had just pinged"
        await heartbeat.settled()
        assert (await monitor(ingest, key, created["id"]))["state"] == "up"
        assert await flips_of(ingest, key, created["id"], 1) == [("new", "up", "ping")]
        await tap.take(1)
    assert tap.of(created["id"]) == ["monitor.up"]


async def test_a_change_whose_settler_died_is_settled_once_by_the_sweep(world, heartbeats, settings):
    clock, ingest, key, heartbeat = world
    [crashing] = await heartbeats(clock)
    before_claim = await create_monitor(ingest, key, name="died before claiming")
    after_claim = await create_monitor(ingest, key, name="died holding the lease")
    monitors = heartbeat.store[COLLECTION]
    async with EventTap(settings.amqp_url) as tap:
        for created in (before_claim, after_claim):
            await ping(ingest, created["token"], "/up")
        await heartbeat.settled()
        for created in (before_claim, after_claim):
            doc = await monitors.find_one({"_id": created["id"]})
            # The state change is written, then the process "dies" before its consequences.
            assert await crashing.changes.apply(
                Snapshot.of(doc), MonitorState.down, clock(), reason="ping", message="x"
            )
        assert await crashing.changes._claim(after_claim["id"]) is not None  # noqa: SLF001 - dies holding it

        await heartbeat.scan()  # the unclaimed change is settled; the leased one waits
        await tap.take(3)
        assert tap.of(before_claim["id"]) == ["monitor.up", "monitor.down"]
        assert tap.of(after_claim["id"]) == ["monitor.up"]

        clock.advance(31)  # the lease runs out
        await heartbeat.scan()
        await heartbeat.scan()
        await tap.take(4)
    assert tap.of(after_claim["id"]) == ["monitor.up", "monitor.down"]
    assert len(tap.events) == 4
    for created in (before_claim, after_claim):
        doc = await monitors.find_one({"_id": created["id"]})
        assert doc["pending"] == [] and "outbox_at" not in doc and "outbox_owner" not in doc
        assert len(await flips_of(ingest, key, created["id"], 2)) == 2
        assert len(await listed(ingest, key, f"/v1/monitors/{created['id']}/incidents", 1)) == 1


@pytest.mark.slow
async def test_two_heartbeat_processes_flip_and_alert_each_change_once(ingest, settings, tmp_path):
    key = await ingest.tenant()
    monitors = [
        await create_monitor(ingest, key, name=f"job {n}", heartbeat_interval_seconds=1, grace_seconds=2)
        for n in range(30)
    ]
    processes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        config = settings.model_copy(
            update={"heartbeat_port": free_port(), "monitor_scan_seconds": 0.1, "monitor_scan_batch": 5}
        )
        processes.append(start_service("heartbeat", config, tmp_path / name))
    try:
        async with EventTap(settings.amqp_url) as tap:
            for created in monitors:
                assert (await ping(ingest, created["token"]))[0] == 200
            for _ in range(300):
                status, down, _ = await ingest.call(
                    "GET", "/v1/monitors", token=key, params={"state": "down", "limit": "100"}
                )
                if len(down["data"]) == len(monitors):
                    break
                await asyncio.sleep(0.1)
            assert len(down["data"]) == len(monitors)
            await tap.take(2 * len(monitors), settle=1.5)
        store = await Store.connect(settings.mongo_uri, settings.mongo_db)
        try:
            for created in monitors:
                flips = await store[FLIPS].find({"monitor_id": created["id"]}).sort("at", 1).to_list()
                flipped_to = [f["to"] for f in flips]
                # late may be skipped if no scan fell within the grace, never repeated.
                assert flipped_to in (["up", "late", "down"], ["up", "down"]), flipped_to
                assert tap.of(created["id"]) == [f"monitor.{state}" for state in flipped_to]
        finally:
            await store.close()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=30) == 0


async def test_a_monitor_that_stops_pinging_is_delivered_as_monitor_down(platform, start_consumer, receiver, settings):
    key = await platform.tenant()
    for path, fields in (
        ("/alerts", {"event_types": ["monitor.*"]}),
        ("/slack", {"event_types": ["monitor.down"], "payload_format": "slack"}),
        ("/discord", {"event_types": ["monitor.down"], "payload_format": "discord"}),
    ):
        status, body, _ = await platform.call(
            "POST", "/v1/endpoints", token=key, json={"url": receiver.url(path), **fields}
        )
        assert status == 201, body
    interval, grace, scan = 2, 2, 0.5
    await start_consumer("heartbeat", setup, monitor_scan_seconds=scan)
    created = await create_monitor(
        platform, key, name="nightly backup", heartbeat_interval_seconds=interval, grace_seconds=grace
    )
    pinged_at = time.monotonic()
    assert (await ping(platform, created["token"]))[0] == 200
    alerts = await receiver.wait_for("/alerts", 3, timeout=30)  # up, late, down
    [slack] = await receiver.wait_for("/slack", 1, timeout=10)
    [discord] = await receiver.wait_for("/discord", 1, timeout=10)
    for _ in range(100):  # the counts are taken at the end of the scan that flipped
        async with platform.session.get(f"http://127.0.0.1:{settings.heartbeat_port}/metrics") as response:
            status, text = response.status, await response.text()
        if 'hookyard_monitors{state="down"} 1.0' in text:
            break
        await asyncio.sleep(0.05)

    types = [json.loads(r["body"])["type"] for r in alerts]
    assert types == ["monitor.up", "monitor.late", "monitor.down"]
    down = alerts[2]
    envelope = json.loads(down["body"])
    assert envelope["data"]["monitor_id"] == created["id"] and envelope["data"]["status"] == "down"
    assert envelope["severity"] == "high" and down["headers"]["webhook-id"].startswith("msg_")
    took = down["at"] - pinged_at
    # Not before the deadline; within interval + grace + one scan period (plus delivery).
    assert interval + grace - 0.1 <= took <= interval + grace + scan + 1.5, took

    slack_body = json.loads(slack["body"])
    assert slack_body["text"].startswith("🔴 nightly backup is DOWN") and slack_body["blocks"]
    discord_body = json.loads(discord["body"])
    assert (
        discord_body["content"] == "🔴 nightly backup is DOWN"
        and discord_body["embeds"][0]["footer"]["text"] == "monitor.down"
    )

    assert status == 200
    assert 'hookyard_monitors{state="down"} 1.0' in text
    assert (
        "hookyard_heartbeat_last_scan_timestamp_seconds" in text
        and 'hookyard_monitor_flips_total{state="down"}' in text
    )
    assert "hookyard_heartbeat_scan_seconds_count" in text


# Schedules and runs (issue 17): cron deadlines, and a started run that does not finish.


async def test_a_scheduled_monitor_is_late_after_its_time_and_down_after_grace(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, schedule="*/10 * * * *", tz="America/New_York", grace_seconds=120)
    await ping(ingest, created["token"])
    await heartbeat.settled()
    shown = await monitor(ingest, key, created["id"])
    late_at = datetime.fromisoformat(shown["late_at"])
    pinged = datetime.fromisoformat(shown["last_ping_at"])
    # The next multiple of ten minutes after the ping, whatever the zone (its offset is whole hours).
    assert late_at.minute % 10 == 0 and late_at.second == 0 and timedelta(0) < late_at - pinged <= timedelta(minutes=10)
    assert datetime.fromisoformat(shown["deadline"]) == late_at + timedelta(seconds=120)

    clock.offset = late_at - pinged - timedelta(seconds=5)  # just before the scheduled time
    assert (await heartbeat.scan()).flipped == 0
    clock.advance(6)
    assert (await heartbeat.scan()).flipped == 1
    assert (await monitor(ingest, key, created["id"]))["state"] == "late"
    clock.advance(120)
    assert (await heartbeat.scan()).flipped == 1
    assert (await monitor(ingest, key, created["id"]))["state"] == "down"


async def test_a_start_without_a_finish_within_grace_is_down_and_a_late_finish_brings_it_back(world, settings):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=3600, grace_seconds=60)
    finished = await create_monitor(ingest, key, name="finishes", heartbeat_interval_seconds=3600, grace_seconds=60)
    async with EventTap(settings.amqp_url) as tap:
        for each in (created, finished):
            assert (await ping(ingest, each["token"]))[0] == 200
            assert (await ping(ingest, each["token"], "/start"))[0] == 200
        assert (await ping(ingest, finished["token"], "/0"))[0] == 200
        await heartbeat.settled()
        shown = await monitor(ingest, key, created["id"])
        assert shown["state"] == "up" and shown["run_started_at"] and shown["last_ping_kind"] == "start"
        clock.advance(59)
        assert (await heartbeat.scan()).flipped == 0
        clock.advance(2)  # the start's grace has passed, its interval has not
        assert (await heartbeat.scan()).flipped == 1
        assert (await heartbeat.scan()).flipped == 0
        await tap.take(4)
    shown = await monitor(ingest, key, created["id"])
    assert shown["state"] == "down" and shown["status_message"].startswith("started but did not finish")
    assert tap.of(created["id"]) == ["monitor.up", "monitor.down"]
    assert tap.events[-1]["payload"]["reason"] == "run_overdue"
    assert (await monitor(ingest, key, finished["id"]))["state"] == "up"  # finished in time
    status, body = await ping(ingest, created["token"], "/0")  # the job finishes after all
    assert body["monitor"]["state"] == "up" and body["run_seconds"] >= 0
    assert (await monitor(ingest, key, created["id"]))["run_started_at"] is None


async def test_max_run_seconds_bounds_a_run_instead_of_the_grace(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(
        ingest, key, heartbeat_interval_seconds=None, grace_seconds=30, max_run_seconds=600
    )  # a push-only job: only its runs have deadlines
    assert (await ping(ingest, created["token"], "/start"))[0] == 200
    await heartbeat.settled()
    clock.advance(300)  # past the grace, within the declared run time
    assert (await heartbeat.scan()).flipped == 0
    assert (await monitor(ingest, key, created["id"]))["state"] == "new"
    clock.advance(301)
    assert (await heartbeat.scan()).flipped == 1
    shown = await monitor(ingest, key, created["id"])
    assert shown["state"] == "down" and "did not finish" in shown["status_message"]


async def test_three_racing_heartbeat_workers_mark_each_unfinished_run_down_once(world, heartbeats, settings):
    clock, ingest, key, third = world
    first, second = await heartbeats(clock, count=2, batch=7)
    jobs = [
        await create_monitor(ingest, key, name=f"run {n}", heartbeat_interval_seconds=3600, grace_seconds=30)
        for n in range(30)
    ]
    async with EventTap(settings.amqp_url) as tap:
        for job in jobs:
            assert (await ping(ingest, job["token"], "/start"))[0] == 200
        await first.settled()
        clock.advance(31)
        flipped = 0
        for _ in range(3):
            results = await asyncio.gather(first.scan(), second.scan(), third.scan())
            flipped += sum(r.flipped for r in results)
        await tap.take(len(jobs))
    assert flipped == len(jobs)
    for job in jobs:
        assert tap.of(job["id"]) == ["monitor.down"], job["name"]
    assert len(tap.events) == len(jobs)
    assert await first.store[FLIPS].count_documents({"reason": "run_overdue"}) == len(jobs)


async def test_a_concurrent_run_still_open_keeps_its_deadline_when_another_finishes(world):
    clock, ingest, key, heartbeat = world
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=3600, grace_seconds=60)
    assert (await ping(ingest, created["token"], "/start", params={"rid": "a"}))[0] == 200
    clock.advance(10)
    assert (await ping(ingest, created["token"], "/start", params={"rid": "b"}))[0] == 200
    clock.advance(10)
    # a's success refreshes the hour-long deadline; b must still finish within its grace.
    assert (await ping(ingest, created["token"], "/0", params={"rid": "a"}))[1]["monitor"]["state"] == "up"
    await heartbeat.settled()
    clock.advance(45)
    assert (await heartbeat.scan()).flipped == 0
    clock.advance(10)  # 70 s since b's start
    assert (await heartbeat.scan()).flipped == 1
    assert (await monitor(ingest, key, created["id"]))["status_message"].startswith("started but did not finish")
