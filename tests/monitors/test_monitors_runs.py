"""The job runner's ping API over real HTTP: start, fail, log and exit statuses, bodies kept to
100 KB, and runs paired by `rid` whose durations reach the stats."""

import uuid
from datetime import timedelta

import pytest

from hookyard_common.monitors import runs
from hookyard_common.monitors.states import Snapshot
from hookyard_common.schemas import MonitorState
from hookyard_ingest.monitors.checks import STORED_BODY_LIMIT
from monitor_helpers import MovableClock, create_monitor, listed, monitor, ping


def test_duration_stats_are_last_median_and_nearest_rank_p95():
    assert runs.duration_stats([]) == {"runs": 0, "last_seconds": None, "median_seconds": None, "p95_seconds": None}
    newest_first = [float(n) for n in range(20, 0, -1)]  # 20 runs of 20 s down to 1 s
    assert runs.duration_stats(newest_first) == {
        "runs": 20,
        "last_seconds": 20.0,
        "median_seconds": 10.5,
        "p95_seconds": 19.0,
    }
    assert runs.duration_stats([3.0, 1.0, 2.0])["median_seconds"] == 2.0


def test_a_run_is_overdue_past_its_deadline_unless_paused_or_already_down():
    clock = MovableClock()
    now = clock()
    started = runs.deadline(now, 60, None)
    assert started == runs.deadline(now, 0, 60)  # max_run_seconds replaces the grace
    for state, overdue in ((MonitorState.up, True), (MonitorState.new, True), (MonitorState.paused, False)):
        snapshot = Snapshot("mon_x", "ten_x", state, 0, run_started_at=now, run_deadline=started)
        assert runs.overdue(snapshot, started) is overdue, state
        assert not runs.overdue(snapshot, started - timedelta(seconds=1))


async def test_every_job_runner_ping_form_by_get_post_and_head(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, grace_seconds=60)
    token = created["token"]
    said = []
    for method, path, kind, state in (
        ("GET", "/start", "start", "new"),  # a start changes no state
        ("POST", "/0", "success", "up"),
        ("GET", "/log", "log", "up"),
        ("POST", "/fail", "fail", "down"),
        ("GET", "/0", "success", "up"),
        ("GET", "/3", "fail", "down"),
        ("POST", "/255", "fail", "down"),
        ("GET", "", "success", "up"),
    ):
        status, body = await ping(ingest, token, path, method=method, data=f"output of {path}".encode())
        assert status == 200 and (body["kind"], body["monitor"]["state"]) == (kind, state), (path, body)
        said.append(kind)
    shown = await monitor(ingest, key, created["id"])
    assert shown["last_ping_kind"] == "success" and shown["last_body"] == "output of "
    async with ingest.session.head(f"{ingest.base}/ping/{token}/start") as response:
        assert response.status == 200 and await response.read() == b""
    assert (await monitor(ingest, key, created["id"]))["last_ping_kind"] == "start"
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 9)
    assert [c["kind"] for c in reversed(checks)] == [*said, "start"]
    exit_three = next(c for c in checks if c["exit_status"] == 3)
    assert exit_three["body"] == "output of /3" and exit_three["message"] == "exit status 3"
    flips = await listed(ingest, key, f"/v1/monitors/{created['id']}/flips", 5)
    # Newest first; 255 found the monitor down already, so it made no flip.
    assert [(f["to"], f["message"]) for f in flips if f["to"] == "down"] == [("down", "exit status 3"), ("down", None)]


@pytest.mark.parametrize("path", ["/256", "/-1", "/007", "/1.0", "/started", "/" + "9" * 40])
async def test_anything_else_in_the_path_is_a_400_naming_the_kinds(ingest, path):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    status, body = await ping(ingest, created["token"], path)
    assert status == 400 and body["error"]["code"] == "invalid_status", body
    assert "start, fail, log or an exit status 0-255" in body["error"]["message"]
    assert (await monitor(ingest, key, created["id"]))["pings_received"] == 0


async def test_a_body_is_kept_to_100_kb_and_marked_when_cut(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    whole = ("é" * 1000).encode()
    cut = b"x" * (STORED_BODY_LIMIT + 5_000)
    for body in (whole, cut):
        assert (await ping(ingest, created["token"], "/log", method="POST", data=body))[0] == 200
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 2)
    assert checks[0]["body_truncated"] is True and checks[0]["body_size"] == len(cut)
    assert checks[0]["body"] == "x" * STORED_BODY_LIMIT
    assert checks[1]["body_truncated"] is False and checks[1]["body"] == whole.decode()
    shown = await monitor(ingest, key, created["id"])
    assert shown["last_body"] == "x" * STORED_BODY_LIMIT and shown["last_ping_kind"] == "log"
    assert (await ping(ingest, created["token"]))[0] == 200
    assert (await monitor(ingest, key, created["id"]))["last_body"] is None  # an empty body is none


async def test_runs_paired_by_rid_record_their_durations_and_the_stats_show_them(start_ingest):
    clock = MovableClock()
    ingest = await start_ingest(clock=clock)
    key = await ingest.tenant()
    created = await create_monitor(ingest, key, heartbeat_interval_seconds=None, max_run_seconds=3600)
    token = created["token"]
    # Two runs at once: a starts, b starts 10 s later, a finishes 30 s after its start, b 5 s after a.
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await ping(ingest, token, "/start", params={"rid": a}))[0] == 200
    clock.advance(10)
    assert (await ping(ingest, token, "/start", params={"rid": b}))[0] == 200
    clock.advance(20)
    status, body = await ping(ingest, token, "/0", params={"rid": a})
    assert body["run_seconds"] == pytest.approx(30, abs=0.5)
    shown = await monitor(ingest, key, created["id"])
    assert shown["run_started_at"] is not None  # b is still open
    clock.advance(5)
    status, body = await ping(ingest, token, params={"rid": b})
    assert body["run_seconds"] == pytest.approx(25, abs=0.5)
    shown = await monitor(ingest, key, created["id"])
    assert shown["run_started_at"] is None and shown["last_run_seconds"] == pytest.approx(25, abs=0.5)
    # Without a rid: one run at a time. A failure closes its run without a duration.
    for seconds in (1, 2, 3, 4, 100):
        assert (await ping(ingest, token, "/start"))[0] == 200
        clock.advance(seconds)
        assert (await ping(ingest, token, "/0"))[1]["run_seconds"] == pytest.approx(seconds, abs=0.5)
    assert (await ping(ingest, token, "/start"))[0] == 200
    assert (await ping(ingest, token, "/1"))[1]["run_seconds"] is None
    assert (await ping(ingest, token, "/0"))[1]["run_seconds"] is None  # nothing open: no run

    status, stats, _ = await ingest.call("GET", f"/v1/monitors/{created['id']}/stats", token=key)
    durations = stats["runs_7d"]
    assert durations["runs"] == 7 and durations["last_seconds"] == pytest.approx(100, abs=0.5)
    assert durations["median_seconds"] == pytest.approx(4, abs=0.5)
    assert durations["p95_seconds"] == pytest.approx(100, abs=0.5)
    checks = await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 16)
    assert {c["rid"] for c in checks} == {a, b, None}
    # Runs older than the window leave the stats.
    clock.advance(8 * 86_400)
    status, stats, _ = await ingest.call("GET", f"/v1/monitors/{created['id']}/stats", token=key)
    assert stats["runs_7d"]["runs"] == 0

    status, body = await ping(ingest, token, "/start", params={"rid": "not a uuid!"})
    assert status == 400 and body["error"]["code"] == "invalid_rid" and body["error"]["field"] == "rid"


async def test_a_list_of_monitors_leaves_their_last_bodies_out(ingest):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    assert (await ping(ingest, created["token"], "/log", method="POST", data=b"y" * 50_000))[0] == 200
    status, page, _ = await ingest.call("GET", "/v1/monitors", token=key)
    assert status == 200 and "last_body" not in page["data"][0] and page["data"][0]["last_ping_kind"] == "log"
    assert (await monitor(ingest, key, created["id"]))["last_body"] == "y" * 50_000
