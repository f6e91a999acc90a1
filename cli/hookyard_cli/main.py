"""`hookyard`: the command line of operators and developers.

    hookyard status [--json] [--host HOST]      is every dependency and service ready, and why not
    hookyard up | down | logs [-f]              the local stack (as `make up` / `make down`)
    hookyard tenants create NAME [--save]       a tenant and its API key (admin token)
    hookyard tenants broker-account TENANT_ID   the rabbitmqctl commands of its restricted broker user
    hookyard sources create --provider P        a source and its URL
    hookyard listen --source SRC --forward-to URL     a tenant's webhooks on this machine
    hookyard messages tail                      the received-message log, followed
    hookyard dead-letters replay --since 2h     send dead letters again, with a progress bar
    hookyard parked list | show KEY | redrive KEY|--all   messages parked in hookyard.invalid (admin)

`status` checks that the broker and the database answer and that each
service's `/readyz` says ready, with the reason when one is not. Every
command reads the same environment variables as the services; after
`make up` it also reads `.hookyard/env`, so it works with no variable set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import aiohttp
import orjson

from hookyard_cli import dead_letter_replay, dev, listen, messages_tail, onboarding, parked_messages
from hookyard_cli.api import CliError
from hookyard_cli.dev import SERVICES, read_env_file, state_dir
from hookyard_common.broker import failover
from hookyard_common.core.settings import Settings
from hookyard_common.store.client import Store

TIMEOUT_SECONDS = 3.0


async def _check_broker(settings: Settings) -> tuple[bool, str]:
    try:
        connection = await failover.connect(settings.amqp_url, timeout=TIMEOUT_SECONDS)
    except Exception as exc:
        return False, f"unreachable: {exc!r}"
    await connection.close()
    return True, "connected"


async def _check_database(settings: Settings) -> tuple[bool, str]:
    try:
        store = await Store.connect(settings.mongo_uri, settings.mongo_db, timeout_seconds=TIMEOUT_SECONDS)
    except Exception as exc:
        return False, f"unreachable: {type(exc).__name__}"
    await store.close()
    return True, "ping ok"


async def _check_service(session: aiohttp.ClientSession, url: str) -> tuple[bool, str]:
    try:
        async with session.get(url) as response:
            body = await response.json(content_type=None)
    except Exception as exc:
        return False, f"no answer at {url} ({type(exc).__name__})"
    if response.status == 200:
        return True, url
    failing = [name for name, ok in (body.get("checks") or {}).items() if not ok]
    reason = body.get("reason") or (f"{', '.join(failing)} unreachable" if failing else body.get("status"))
    return False, f"{reason} ({url})"


async def status(settings: Settings, host: str) -> list[dict]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        checks = [_check_broker(settings), _check_database(settings)] + [
            _check_service(session, f"http://{host}:{settings.service_port(name)}/readyz") for name in SERVICES
        ]
        results = await asyncio.gather(*checks)
    names = ["rabbitmq", "mongodb"] + [f"hookyard-{name}" for name in SERVICES]
    return [
        {"component": name, "ready": ok, "detail": detail} for name, (ok, detail) in zip(names, results, strict=True)
    ]


def _print_table(rows: list[dict]) -> None:
    colour = sys.stdout.isatty()
    width = max(len(row["component"]) for row in rows)
    for row in rows:
        word = "ready" if row["ready"] else "NOT READY"
        if colour:
            word = f"\033[{'32' if row['ready'] else '31'}m{word}\033[0m"
        print(f"{row['component'].ljust(width)}  {word}  {row['detail']}")


def run_status(args: argparse.Namespace) -> int:
    settings = Settings()
    host = args.host or ("127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host)
    rows = asyncio.run(status(settings, host))
    if args.json:
        print(orjson.dumps({"ready": all(r["ready"] for r in rows), "components": rows}).decode())
    else:
        _print_table(rows)
    return 0 if all(row["ready"] for row in rows) else 1


def _add_stack_parsers(sub) -> None:
    sub.add_parser("up", help="start the local stack (as `make up`)").set_defaults(run=lambda a: dev.main(["up"]))
    sub.add_parser("down", help="stop what `up` started").set_defaults(run=lambda a: dev.main(["down"]))
    logs = sub.add_parser("logs", help="the local services' logs")
    logs.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)} (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines to show first (50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep showing what is added")
    logs.set_defaults(run=lambda a: dev.logs(a.services, a.lines, a.follow))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hookyard", description="Hookyard's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    status_parser = sub.add_parser("status", help="is each dependency and service reachable and ready")
    status_parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    status_parser.add_argument("--host", help="where the services listen (default: HOOKYARD_HTTP_HOST)")
    status_parser.set_defaults(run=run_status)
    _add_stack_parsers(sub)
    onboarding.add_parsers(sub)
    listen.add_parser(sub)
    messages_tail.add_parser(sub)
    dead_letter_replay.add_parser(sub)
    parked_messages.add_parser(sub)
    args = parser.parse_args(argv)

    for key, value in read_env_file(state_dir() / "env").items():
        os.environ.setdefault(key, value)
    try:
        return args.run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
