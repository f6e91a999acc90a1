"""`hookyard dead-letters replay`: send a window of dead letters again and watch them go.

    hookyard dead-letters replay --since 2h [--until 1h] [--endpoint ep_...] [--no-wait] [--json]

`POST /v1/dead-letters/replay` re-queues them and names the replay; the
bar then follows `GET /v1/dead-letters/replays/{id}`. Progress is counted
on the dead-letter records themselves, which is where the truth is: a
replayed message is `replaying` while in flight, its record disappears once
it is delivered, and it is `dead` again (with its new attempts) if it fails
again. So the bar counts messages settled either way, and the exit code is
0 only when every one was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp
import orjson

from hookyard_cli.api import Api, CliError, add_connection_flags, api_key, ingest_url
from hookyard_cli.terminal import ProgressBar
from hookyard_cli.times import iso, moment

POLL_SECONDS = 0.5


async def _main(args: argparse.Namespace) -> int:
    since, until = moment(args.since), moment(args.until)
    if since >= until:
        raise CliError("--since must be before --until")
    window = {"since": iso(since), "until": iso(until)}
    if args.endpoint:
        window["endpoint_id"] = args.endpoint
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(ingest_url(args.url), api_key(args.api_key), session)
        started = await api.call("POST", "/v1/dead-letters/replay", json=window)
        total = started["requeued"]
        if total == 0:
            return _report(args, {**started, "done": True}, "Nothing to replay: no dead letters in that window.")
        if not args.wait:
            return _report(args, started, f"{total} dead letter(s) re-queued (replay {started['replay_id']}).")
        bar = None if args.json else ProgressBar(total)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while True:
            progress = await api.call("GET", f"/v1/dead-letters/replays/{started['replay_id']}")
            settled = progress["delivered"] + progress["failed_again"]
            if bar:
                bar.update(settled, f"delivered {progress['delivered']}, failed again {progress['failed_again']}")
            if progress["done"] or loop.time() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        if bar:
            bar.finish()
    if not progress["done"]:
        _report(args, progress, f"Still in flight after {args.timeout:g} s: {progress['replaying']}.")
        return 1
    text = f"Replayed {total}: {progress['delivered']} delivered, {progress['failed_again']} failed again"
    if progress["failed_again"]:
        text += " (they are dead letters again, with their new attempts)"
    _report(args, progress, text + ".")
    return 0 if progress["failed_again"] == 0 else 1


def _report(args: argparse.Namespace, figures: dict, text: str) -> int:
    print(orjson.dumps(figures).decode() if args.json else text)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:  # the replay goes on without us
        sys.stderr.write("\nStopped watching; the replay continues.\n")
        return 130


def add_parser(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("dead-letters", help="messages whose every attempt failed").add_subparsers(
        dest="action", required=True
    )
    parser = group.add_parser("replay", help="send the dead letters of a time window again, with a progress bar")
    parser.add_argument("--since", required=True, help="window start: when they died (2h, 1d, ISO time)")
    parser.add_argument("--until", default="now", help="window end (default: now)")
    parser.add_argument("--endpoint", help="only this endpoint's dead letters")
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="re-queue and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to watch at most (600)")
    parser.add_argument("--json", action="store_true", help="the final figures as JSON")
    add_connection_flags(parser)
    parser.set_defaults(run=run)
