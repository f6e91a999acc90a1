"""The pure parts of `hookyard listen`: no I/O."""

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest

from hookyard_cli import wire
from hookyard_cli.api import CliError
from hookyard_cli.forward import forwarded_headers, target_url
from hookyard_cli.listen import RESUME_OVERLAP, Backoff, ResumePoint
from hookyard_cli.seen_ids import SeenIds
from hookyard_cli.terminal import ProgressBar, Style, colour_wanted
from hookyard_cli.times import moment
from hookyard_common import listen_wire
from hookyard_common.listen_wire import CaughtUp, EventFrame, Heartbeat, Hello, Request
from hookyard_ingest.listen.outbox import Outbox

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def hello(at: datetime, catching_up: bool = False) -> Hello:
    return Hello(
        listener_id="lst_1", target="source", target_id="src_1", at=at, heartbeat_seconds=15, catching_up=catching_up
    )


async def test_outbox_refuses_past_its_budget_but_always_takes_one_frame():
    box = Outbox(limit_bytes=10)
    assert box.offer("x" * 50), "a single large frame is not slowness"
    assert not box.offer("y")
    assert await box.take() == "x" * 50
    assert box.offer("abcd") and box.offer("efgh") and not box.offer("ijk")
    assert (len(box), box.pending_bytes) == (2, 8)
    assert [await box.take(), await box.take()] == ["abcd", "efgh"]
    waiting = asyncio.create_task(box.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    box.offer("late")
    assert await asyncio.wait_for(waiting, 1) == "late"


def test_only_end_to_end_headers_are_forwarded():
    headers = forwarded_headers(
        [
            ("Host", "hooks.example.com"),
            ("Content-Length", "12"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Content-Encoding", "gzip"),
            ("Stripe-Signature", "t=1,v1=abc"),
            ("X-Dup", "a"),
            ("X-Dup", "b"),
            ("Content-Type", "application/json"),
        ]
    )
    assert list(headers.items()) == [
        ("Stripe-Signature", "t=1,v1=abc"),
        ("X-Dup", "a"),
        ("X-Dup", "b"),
        ("Content-Type", "application/json"),
    ]


def test_the_original_query_string_is_kept():
    assert target_url("http://localhost:3000/hooks", "") == "http://localhost:3000/hooks"
    assert target_url("http://localhost:3000/hooks", "a=1") == "http://localhost:3000/hooks?a=1"
    assert target_url("http://localhost:3000/hooks?x=y", "a=1") == "http://localhost:3000/hooks?x=y&a=1"


def test_resume_point_moves_only_on_times_the_server_vouched_for():
    point = ResumePoint(since=None)
    assert point.since(overlap=False) is None
    point.on_hello(hello(T0))
    point.on_heartbeat(Heartbeat(at=T0 + timedelta(seconds=15)))
    point.on_drop()
    # After a drop: from the last heartbeat, less the overlap for messages still on their way.
    assert point.since(overlap=True) == T0 + timedelta(seconds=15) - RESUME_OVERLAP
    # Reconnected, catching up: heartbeats do not count until the catch-up is over.
    point.on_hello(hello(T0 + timedelta(minutes=5), catching_up=True))
    point.on_heartbeat(Heartbeat(at=T0 + timedelta(minutes=6)))
    assert point.since(overlap=False) == T0 + timedelta(seconds=15)
    point.on_caught_up(CaughtUp(count=3, at=T0 + timedelta(minutes=5)))
    point.on_heartbeat(Heartbeat(at=T0 + timedelta(minutes=7)))
    assert point.since(overlap=False) == T0 + timedelta(minutes=7)


def test_resume_point_starts_at_since():
    point = ResumePoint(since=T0)
    point.on_hello(hello(T0 + timedelta(minutes=10), catching_up=True))
    point.on_drop()
    assert point.since(overlap=False) == T0, "dropped during the catch-up: it starts over"


def test_seen_ids_forget_the_oldest():
    seen = SeenIds(capacity=2)
    assert seen.first_time("a") and seen.first_time("b") and not seen.first_time("a")
    assert seen.first_time("c")  # "b" is now the oldest and goes
    assert seen.first_time("b") and not seen.first_time("c")


def test_backoff_doubles_up_to_its_ceiling_and_resets():
    backoff = Backoff(first=0.5, ceiling=4)
    delays = [backoff.next() for _ in range(6)]
    assert all(0.75 * d <= got <= d for got, d in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True))
    backoff.reset()
    assert backoff.next() <= 0.5


def test_moments():
    assert moment("10m", now=T0) == T0 - timedelta(minutes=10)
    assert moment("1.5h", now=T0) == T0 - timedelta(minutes=90)
    assert moment("2026-11-23T09:00:00Z") == T0 - timedelta(hours=1)
    assert moment("2026-11-23T09:00:00") == T0 - timedelta(hours=1)  # no zone: UTC
    with pytest.raises(CliError, match="duration"):
        moment("yesterday")


def test_frames_round_trip_and_bodies_survive_any_bytes():
    raw = bytes(range(256))
    frame = EventFrame(id="evt_1", event_type="a.b", received_at=T0, request=Request.of("POST", [("A", "1")], raw))
    parsed = listen_wire.parse(frame.to_text())
    assert parsed == frame and parsed.request.raw_body == raw and parsed.request.body_encoding == "base64"
    # Fields a newer ingest adds are ignored.
    assert listen_wire.parse('{"type": "heartbeat", "at": "2026-11-23T10:00:00Z", "new": 1}') == Heartbeat(at=T0)


SERVER_FRAMES = [
    hello(T0, catching_up=True),
    EventFrame(
        id="evt_1", event_type="a.b", received_at=T0, replayed=True, request=Request.of("POST", [], bytes(range(9)))
    ),
    CaughtUp(count=3, truncated=True, at=T0),
    Heartbeat(at=T0),
]


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: f.type)
def test_the_cli_reads_every_frame_the_ingest_writes(frame):
    """The CLI's own reading of the protocol (it installs without hookyard_common) agrees with the ingest's."""
    parsed = wire.parse(frame.to_text())
    assert type(parsed).__name__ == type(frame).__name__
    shared = parsed.model_dump(mode="json")
    assert shared == {k: v for k, v in frame.model_dump(mode="json").items() if k in shared}
    assert set(frame.model_dump()) - set(shared) <= {"heartbeat_seconds", "source_id"}
    if isinstance(frame, EventFrame):
        assert parsed.request.raw_body == frame.request.raw_body
    assert wire.CLOSE_TARGET_GONE == listen_wire.CLOSE_TARGET_GONE and wire.CLOSE_SHUTDOWN == listen_wire.CLOSE_SHUTDOWN


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(FakeTerminal()) and not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(FakeTerminal())
    style = Style(True)
    assert style.status(200, "200") == "\033[32m200\033[0m" and style.status(None, "refused").startswith("\033[31m")
    assert Style(False).status(500, "500") == "500"


def test_progress_bar_draws_in_place_on_a_terminal_and_by_lines_elsewhere():
    piped = io.StringIO()
    bar = ProgressBar(4, piped)
    for done in (0, 2, 2, 4):
        bar.update(done, "delivered")
    assert piped.getvalue().splitlines() == [
        "[" + "." * 30 + "] 0/4  delivered",
        "[" + "#" * 15 + "." * 15 + "] 2/4  delivered",
        "[" + "#" * 30 + "] 4/4  delivered",
    ]
    tty = FakeTerminal()
    bar = ProgressBar(2, tty)
    bar.update(1)
    bar.update(2)
    bar.finish()
    assert tty.getvalue().count("\r\033[K") == 2 and tty.getvalue().endswith("\n")


@pytest.mark.parametrize("truncated", [True, False])
async def test_the_cli_says_when_a_catch_up_was_cut_to_its_limit(capsys, truncated):
    from argparse import Namespace

    from hookyard_cli.listen import Listener

    args = Namespace(
        url="http://127.0.0.1:1",
        api_key="hy_test",
        source="src_1",
        endpoint=None,
        forward_to="http://127.0.0.1:2/",
        timeout=5.0,
        json=False,
        since=None,
        log=None,
    )
    listener = Listener(args)
    # The CLI reads frames with its own models (hookyard_cli.wire), not the server's.
    frame = wire.CaughtUp(type="caught_up", count=1_000, truncated=truncated, at=T0)
    await listener._on_frame(frame, None)
    said = capsys.readouterr().err
    assert "Caught up: 1000 message(s) from the log" in said
    assert ("the oldest of more; see `hookyard messages tail`" in said) is truncated
