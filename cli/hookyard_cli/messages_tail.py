"""`hookyard messages tail`: the received-message log as it grows (seed 002's "recent activity").

    hookyard messages tail [--source SRC] [-n 10 | --since 1h] [--no-follow] [--json] [--interval 2]

Shows the latest messages, oldest first, then asks `GET /v1/received-events` every
`--interval` seconds for newer ones. Each poll starts from the newest
message already shown less an overlap, because the dispatcher logs a
message a moment after it was accepted (by any replica): late ones are
still found, and repeats are dropped by id. Times come from the log, never
from this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta

import aiohttp
import orjson

from hookyard_cli.api import Api, CliError, add_connection_flags, api_key, ingest_url
from hookyard_cli.seen_ids import SeenIds
from hookyard_cli.terminal import Style, colour_wanted
from hookyard_cli.times import iso, moment

POLL_OVERLAP = timedelta(seconds=30)
PAGE = 100
# How many messages one --since shows at most before following.
BACKLOG_LIMIT = 1_000


def received(message: dict) -> datetime:
    return datetime.fromisoformat(message["received_at"])


async def fetch(api: Api, params: dict, limit: int) -> list[dict]:
    """Up to `limit` messages matching `params`, newest first, across pages."""
    found: list[dict] = []
    cursor = None
    while len(found) < limit:
        page = await api.call(
            "GET", "/v1/received-events", params={**params, "limit": PAGE, **({"cursor": cursor} if cursor else {})}
        )
        found.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    return found[:limit]


class Tail:
    def __init__(self, api: Api, source: str | None, as_json: bool):
        self.api = api
        self.filters = {"source_id": source} if source else {}
        self.as_json = as_json
        self.style = Style(colour_wanted(sys.stdout))
        self.seen = SeenIds()
        self.newest: datetime | None = None

    async def start(self, count: int, since: datetime | None) -> None:
        if since is not None:
            backlog = await fetch(self.api, {**self.filters, "since": iso(since)}, BACKLOG_LIMIT)
            shown = backlog
            if len(backlog) == BACKLOG_LIMIT:
                sys.stderr.write(f"(showing the latest {BACKLOG_LIMIT} of more messages since {iso(since)})\n")
        else:
            # One page, all marked as seen, of which the latest `count` are shown.
            backlog = await fetch(self.api, self.filters, PAGE)
            shown = backlog[:count]
        for message in backlog:
            self.seen.first_time(message["id"])
            self._note_time(message)
        self._show(shown)

    async def poll(self) -> None:
        params = dict(self.filters)
        if self.newest is not None:
            params["since"] = iso(self.newest - POLL_OVERLAP)
        fresh = [m for m in await fetch(self.api, params, BACKLOG_LIMIT) if self.seen.first_time(m["id"])]
        for message in fresh:
            self._note_time(message)
        self._show(fresh)

    def _note_time(self, message: dict) -> None:
        at = received(message)
        self.newest = at if self.newest is None or at > self.newest else self.newest

    def _show(self, messages: list[dict]) -> None:
        for message in sorted(messages, key=lambda m: (received(m), m["id"])):
            sys.stdout.write(self._line(message) + "\n")
        sys.stdout.flush()

    def _line(self, message: dict) -> str:
        if self.as_json:
            return orjson.dumps(message).decode()
        s = self.style
        check = message["verification"]
        verified = s(f"verified {check['scheme']}", "green") if check["verified"] else s("unverified", "yellow")
        when = received(message).astimezone().strftime("%H:%M:%S")
        return (
            f"{s(when, 'dim')}  {message['provider']}  {message['source_id']}  {s(message['event_type'], 'bold')}  "
            f"{s(message['id'], 'dim')}  {message['size']} B  {verified}  from {message['client_ip']}"
        )


async def _main(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        tail = Tail(Api(ingest_url(args.url), api_key(args.api_key), session), args.source, args.json)
        await tail.start(args.lines, moment(args.since) if args.since else None)
        while args.follow:
            await asyncio.sleep(args.interval)
            try:
                await tail.poll()
            except CliError as exc:  # the ingest is away for a moment: say so and keep following
                sys.stderr.write(f"({exc}; retrying)\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.lines <= PAGE:
        raise CliError(f"-n must be from 1 to {PAGE}")
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    messages = sub.add_parser("messages", help="the received-message log").add_subparsers(dest="action", required=True)
    parser = messages.add_parser("tail", help="show the latest received messages and follow new ones")
    parser.add_argument("--source", help="only this source's messages")
    parser.add_argument("-n", "--lines", type=int, default=10, help="how many of the latest to show first (10)")
    parser.add_argument("--since", help="show every message since then first (10m, 2h, ISO time) instead of -n")
    parser.add_argument("--no-follow", dest="follow", action="store_false", help="show and exit")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (2)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    add_connection_flags(parser)
    parser.set_defaults(run=run)
