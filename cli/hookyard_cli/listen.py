"""`hookyard listen`: a tenant's webhooks, live, on the developer's own machine.

    hookyard listen --source src_... --forward-to http://localhost:3000/webhooks
    hookyard listen --endpoint ep_... --forward-to http://localhost:3000/hooks [--since 10m] [--json]

The CLI opens a WebSocket to the ingest (outbound, so no tunnel and no
public address are needed) and re-sends each message it is given to the
local URL, one at a time, in order. A source's messages arrive as the
provider sent them, so the provider's signature verifies; an endpoint's
as that endpoint is sent them, signed with its `whsec_` secret.

Reconnecting: after any drop (an ingest restart, a network change, being
too slow) it reconnects with exponential backoff and asks the ingest for
what it missed, read from the message log. It resumes from the last point
the server vouched for (its `hello`, `caught_up` and `heartbeat` times,
never this machine's clock) less an overlap for messages still in flight,
and drops every repeat by event id, so nothing is shown or sent twice.

How it fares (connected since when, messages forwarded, the last error) is
kept in a state file for `hookyard listen status` (listen_state.py);
`--background`, `listen status` and `listen stop` are in listen_control.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import orjson
from pydantic import ValidationError

from hookyard_cli import listen_control, listen_state, wire
from hookyard_cli.api import (
    ApiFailure,
    Refused,
    add_connection_flags,
    api_key,
    ingest_url,
    unreachable,
    websocket_url,
)
from hookyard_cli.forward import Answer, forward
from hookyard_cli.seen_ids import SeenIds
from hookyard_cli.terminal import Style, colour_wanted
from hookyard_cli.times import iso, moment
from hookyard_cli.wire import CaughtUp, EventFrame, Heartbeat, Hello

# Messages accepted just before the stream stopped may still have been on their way
# (and are stamped by whichever replica took them): the catch-up starts this much earlier.
RESUME_OVERLAP = timedelta(seconds=30)
PING_SECONDS = 15.0
CONNECT_SECONDS = 15.0
MAX_FRAME_BYTES = 64 * 1024 * 1024
RESOURCE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Handshake answers that waiting will not fix.
FATAL_STATUSES = {400, 401, 403, 404}


class ResumePoint:
    """From when to ask for a catch-up after a drop: the last server time up to which the stream is complete."""

    def __init__(self, since: datetime | None):
        self.at = since
        self.complete = False  # is everything after `at` known to have come through?

    def on_hello(self, hello: Hello) -> None:
        self.complete = not hello.catching_up
        if self.complete:
            self.at = max(self.at, hello.at) if self.at else hello.at

    def on_caught_up(self, caught_up: CaughtUp) -> None:
        self.complete = True
        self.at = max(self.at, caught_up.at) if self.at else caught_up.at

    def on_heartbeat(self, heartbeat: Heartbeat) -> None:
        if self.complete:
            self.at = max(self.at, heartbeat.at) if self.at else heartbeat.at

    def on_drop(self) -> None:
        self.complete = False

    def since(self, overlap: bool) -> datetime | None:
        if self.at is None:
            return None
        return self.at - RESUME_OVERLAP if overlap else self.at


class Backoff:
    """0.5 s, 1 s, 2 s ... up to 30 s, each with jitter; back to the start once connected."""

    def __init__(self, first: float = 0.5, ceiling: float = 30.0):
        self.first = first
        self.ceiling = ceiling
        self.failures = 0

    def next(self) -> float:
        delay = min(self.ceiling, self.first * 2**self.failures)
        self.failures += 1
        return round(delay * random.uniform(0.75, 1.0), 2)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    forwarded: int = 0
    succeeded: int = 0  # answered 2xx
    refused: int = 0  # answered otherwise
    unanswered: int = 0  # no answer at all
    caught_up: int = 0
    reconnects: int = 0

    def count(self, frame: EventFrame, answer: Answer) -> None:
        self.forwarded += 1
        self.caught_up += frame.replayed
        if answer.status is None:
            self.unanswered += 1
        elif 200 <= answer.status < 300:
            self.succeeded += 1
        else:
            self.refused += 1

    def as_dict(self) -> dict:
        return {
            "forwarded": self.forwarded,
            "succeeded": self.succeeded,
            "refused": self.refused,
            "unanswered": self.unanswered,
            "caught_up": self.caught_up,
            "reconnects": self.reconnects,
            "seconds": round(time.monotonic() - self.started, 1),
        }


class Printer:
    """Event lines on stdout (text with colour, or JSON lines); how the connection fares on stderr."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.style = Style(colour_wanted(sys.stdout))
        self.note_style = Style(colour_wanted(sys.stderr))

    def _json(self, kind: str, **fields) -> None:
        sys.stdout.write(orjson.dumps({"type": kind, **fields}).decode() + "\n")
        sys.stdout.flush()

    def note(self, kind: str, text: str, **fields) -> None:
        if self.as_json:
            self._json(kind, **fields)
        else:
            sys.stderr.write(self.note_style(text, "dim") + "\n")
            sys.stderr.flush()

    def event(self, frame: EventFrame, answer: Answer) -> None:
        if self.as_json:
            self._json(
                "event",
                id=frame.id,
                event_type=frame.event_type,
                received_at=iso(frame.received_at),
                replayed=frame.replayed,
                status=answer.status,
                latency_ms=answer.latency_ms,
                error=answer.error,
            )
            return
        s = self.style
        when = datetime.now().strftime("%H:%M:%S")
        outcome = str(answer.status) if answer.status is not None else answer.error or "no answer"
        replayed = s("  (caught up)", "dim") if frame.replayed else ""
        sys.stdout.write(
            f"{s(when, 'dim')}  {s(frame.event_type, 'bold')}  {s(frame.id, 'dim')}{replayed}"
            f"  -> {s.status(answer.status, outcome)}  {answer.latency_ms:g} ms\n"
        )
        sys.stdout.flush()

    def summary(self, tally: Tally) -> None:
        figures = tally.as_dict()
        if self.as_json:
            self._json("summary", **figures)
            return
        minutes, seconds = divmod(int(figures["seconds"]), 60)
        sys.stderr.write(
            f"\n{tally.forwarded} forwarded in {minutes}m{seconds:02d}s: {tally.succeeded} answered 2xx, "
            f"{tally.refused} answered otherwise, {tally.unanswered} got no answer; "
            f"{tally.caught_up} caught up from the log; {tally.reconnects} reconnects.\n"
        )


class Disconnected(Exception):
    def __init__(self, code: int | None, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Listener:
    def __init__(self, args: argparse.Namespace):
        self.base = ingest_url(args.url)
        self.token = api_key(args.api_key)
        kind, target = ("sources", args.source) if args.source else ("endpoints", args.endpoint)
        self.target = target
        self.path = f"/v1/{kind}/{target}/listen"
        self.ws_url = websocket_url(self.base, self.path)
        self.forward_to = args.forward_to
        self.timeout = args.timeout
        self.printer = Printer(args.json)
        self.tally = Tally()
        self.seen = SeenIds()
        self.resume = ResumePoint(moment(args.since) if args.since else None)
        self.backoff = Backoff()
        self.queue: asyncio.Queue[EventFrame] = asyncio.Queue(maxsize=10_000)
        self._first = True
        self._live = False  # did the current connection get as far as `hello`?
        self.state = listen_state.ListenerState(
            pid=os.getpid(),
            target="source" if args.source else "endpoint",
            target_id=target,
            forward_to=self.forward_to,
            url=self.base,
            started_at=datetime.now().astimezone().isoformat(timespec="seconds"),
            log=args.log,
        )

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def ever_connected(self) -> bool:
        return not self._first

    async def run(self) -> None:
        """Until cancelled (Ctrl-C) or a fatal answer (CliError)."""
        # The WebSocket lives as long as it may: only making the connection is timed.
        ws_timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS)
        local_timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=ws_timeout) as ws_session,
            aiohttp.ClientSession(timeout=local_timeout) as local,
        ):
            forwarder = asyncio.create_task(self._forward(local))
            try:
                await self._connect_forever(ws_session)
            finally:
                forwarder.cancel()
                await asyncio.gather(forwarder, return_exceptions=True)

    async def _connect_forever(self, session: aiohttp.ClientSession) -> None:
        while True:
            since = self.resume.since(overlap=self.ever_connected)
            self._live = False
            try:
                await self._session(session, since)
                code, reason = None, "the connection ended"
            except Disconnected as exc:
                code, reason = exc.code, exc.reason
            if code == wire.CLOSE_TARGET_GONE:
                raise Refused(f"{reason}; nothing more to listen to")
            self.resume.on_drop()
            self.tally.reconnects += self._live
            delay = 0.0 if code == wire.CLOSE_SHUTDOWN and self.backoff.failures == 0 else self.backoff.next()
            what = "Disconnected" if self._live else "Not connected"
            self._record(connected=False, connected_since=None, last_error=reason)
            self.printer.note(
                "disconnected",
                f"{what}: {reason}{f' ({code})' if code else ''}. Trying again in {delay:g} s ...",
                code=code,
                reason=reason,
                retry_in=delay,
            )
            await asyncio.sleep(delay)

    async def _session(self, session: aiohttp.ClientSession, since: datetime | None) -> None:
        params = {"since": iso(since)} if since else None
        try:
            ws = await session.ws_connect(
                self.ws_url,
                headers=self._auth,
                params=params,
                heartbeat=PING_SECONDS,
                max_msg_size=MAX_FRAME_BYTES,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise await self._refusal(session, exc.status, params) from None
        except aiohttp.ClientConnectorError as exc:
            raise Disconnected(None, f"cannot reach {self.base} ({unreachable(exc)})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Disconnected(None, f"cannot reach {self.base} ({exc or type(exc).__name__})") from None
        async with ws:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.CLOSE:
                    raise Disconnected(message.data, message.extra or "closed by the ingest")
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    raise Disconnected(ws.close_code, "the connection was closed")
                if message.type == aiohttp.WSMsgType.ERROR:
                    raise Disconnected(None, f"connection lost ({ws.exception() or message.data})")
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = wire.parse(message.data)
                except ValidationError:
                    continue  # a frame of a newer ingest: not for this CLI
                await self._on_frame(frame, since)

    async def _refusal(self, session: aiohttp.ClientSession, status: int, params: dict | None) -> Exception:
        """Why the ingest refused the WebSocket: fatal when waiting will not help."""
        if status == 429:
            return Disconnected(status, "too many listeners for this tenant on that ingest")
        if status not in FATAL_STATUSES:
            return Disconnected(status, f"the ingest answered HTTP {status}")
        # A refused handshake carries no body. The same request without the upgrade goes through
        # the same checks (key, ownership), so its JSON error says what is wrong.
        code, message = "http_error", "no explanation given"
        try:
            async with session.get(self.base + self.path, params=params, headers=self._auth) as response:
                error = (await response.json(content_type=None))["error"]
            code, message = error["code"], error["message"]
        except Exception:
            pass
        return ApiFailure(status, code, f"the ingest refused to listen to {self.target}: {message}")

    async def _on_frame(self, frame, since: datetime | None) -> None:
        if isinstance(frame, EventFrame):
            if self.seen.first_time(frame.id):
                await self.queue.put(frame)
        elif isinstance(frame, Heartbeat):
            self.resume.on_heartbeat(frame)
        elif isinstance(frame, Hello):
            self.resume.on_hello(frame)
            self.backoff.reset()
            self._live = True
            self._announce(frame, since)
        elif isinstance(frame, CaughtUp):
            self.resume.on_caught_up(frame)
            more = " (the oldest of more; see `hookyard messages tail`)" if frame.truncated else ""
            self.printer.note(
                "caught_up",
                f"Caught up: {frame.count} message(s) from the log{more}.",
                count=frame.count,
                truncated=frame.truncated,
            )

    def _record(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self.state, name, value)
        listen_state.save(self.state)

    def _announce(self, hello: Hello, since: datetime | None) -> None:
        self._record(connected=True, connected_since=datetime.now().astimezone().isoformat(timespec="seconds"))
        catching = f", catching up from {since.astimezone():%H:%M:%S}" if since else ""
        if self._first:
            text = (
                f"Listening to {hello.target} {hello.target_id} on {self.base}, forwarding to "
                f"{self.forward_to}{catching}. Ctrl-C to stop."
            )
        else:
            text = f"Connected again{catching}."
        self._first = False
        self.printer.note(
            "connected",
            text,
            listener_id=hello.listener_id,
            target=hello.target,
            target_id=hello.target_id,
            at=iso(hello.at),
            catching_up=hello.catching_up,
            since=iso(since) if since else None,
        )

    async def _forward(self, session: aiohttp.ClientSession) -> None:
        while True:
            frame = await self.queue.get()
            answer = await forward(session, self.forward_to, frame.request)
            self.tally.count(frame, answer)
            self.printer.event(frame, answer)
            failed = answer.error or (answer.status is not None and answer.status >= 500 and f"HTTP {answer.status}")
            self._record(
                forwarded=self.tally.forwarded,
                last_error=f"{self.forward_to}: {failed}" if failed else self.state.last_error,
            )


async def _main(args: argparse.Namespace) -> int:
    listener = Listener(args)
    task = asyncio.current_task()
    if task is None:  # asyncio.run runs _main as a task: a signal cancels it
        raise RuntimeError("hookyard listen must run under asyncio.run")
    loop = asyncio.get_running_loop()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await listener.run()
    except asyncio.CancelledError:
        if not stopped:
            raise
    finally:
        listen_state.remove(listener.target, os.getpid())
        if stopped or listener.ever_connected:
            listener.printer.summary(listener.tally)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action:
        return listen_control.ACTIONS[args.action](args)
    if not (args.source or args.endpoint) or not args.forward_to:
        args.parser.error("--source or --endpoint, and --forward-to, are required")
    if args.background:
        return listen_control.start_in_background(args)
    return asyncio.run(_main(args))


def resource_id(text: str) -> str:
    """A source or endpoint id as the API issues them (`src_...`, `ep_...`): it also names the state file."""
    if not RESOURCE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a source or endpoint id")
    return text


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "listen",
        help="forward a source's (or an endpoint's) webhooks to a local URL",
        description=(
            "Receive a tenant's webhooks on this machine: no tunnel, no public address. "
            "`listen status` shows the listeners running here, `listen stop [ID]` stops them, "
            "`listen logs [ID] [-f]` shows what background ones printed."
        ),
    )
    parser.add_argument("action", nargs="?", choices=sorted(listen_control.ACTIONS), help="of running listeners")
    parser.add_argument("which", nargs="?", metavar="ID", help="with stop, logs: only this source's or endpoint's")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--source", type=resource_id, help="a source id: its provider's requests, as sent (signatures verify)"
    )
    which.add_argument(
        "--endpoint", type=resource_id, help="an endpoint id: what it is sent, signed with its whsec_ secret"
    )
    parser.add_argument("--forward-to", metavar="URL", help="where to re-send each message")
    parser.add_argument("--background", action="store_true", help="run detached; see `listen status`, `listen stop`")
    parser.add_argument("-n", "--lines", type=int, default=50, help="with logs: lines to show first (50)")
    parser.add_argument("-f", "--follow", action="store_true", help="with logs: keep showing what is added")
    parser.add_argument("--log", help=argparse.SUPPRESS)  # where a background listener's output goes
    parser.add_argument("--since", help="first catch up on messages from the log since then (10m, 2h, ISO time)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of text")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the local app (30)")
    add_connection_flags(parser)
    parser.set_defaults(run=run, parser=parser)
