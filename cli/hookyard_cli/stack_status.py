"""`hookyard status`: is every dependency and service of a stack reachable and ready, and why not.

It reads the variables the services read (`AMQP_URL`, `MONGO_URI`,
`HOOKYARD_HTTP_HOST`, `HOOKYARD_<SERVICE>_PORT`) with the same defaults, but
from the environment itself: the CLI installs without the services' settings
library (docs/migrating.md#the-cli-on-its-own); `tests/cli/test_cli_on_its_own.py`
keeps the defaults in step with `Settings`. The broker and the database are
asked with their own client libraries; each service through its `/readyz`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import aiohttp
import orjson
from yarl import URL

from hookyard_cli import exit_codes
from hookyard_cli.dev import DEFAULT_PORTS, SERVICES
from hookyard_cli.terminal import Style, colour_wanted

TIMEOUT_SECONDS = 3.0
#: The services' own defaults (hookyard_common/core/settings.py).
DEFAULTS = {
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
    "MONGO_URI": "mongodb://127.0.0.1:27017/",
    "HOOKYARD_HTTP_HOST": "127.0.0.1",
}


def setting(variable: str) -> str:
    return os.environ.get(variable) or DEFAULTS[variable]


def service_port(service: str) -> int:
    return int(os.environ.get(f"HOOKYARD_{service.upper()}_PORT") or DEFAULT_PORTS[service])


def broker_addresses(amqp_url: str) -> list[URL]:
    """The nodes AMQP_URL lists, comma-separated (docs/broker.md "A cluster"): after the first, an
    entry may be `host[:port]` and takes the first's scheme, login, vhost and query."""
    first, *others = [entry.strip() for entry in amqp_url.split(",") if entry.strip()] or [""]
    head = URL(first)
    return [head, *(URL(e) if "://" in e else _with_authority(head, URL("//" + e)) for e in others)]


def _with_authority(head: URL, authority: URL) -> URL:
    return head.with_host(authority.host or "").with_port(authority.port)


async def _check_broker(url: str) -> tuple[bool, str]:
    import aio_pika  # here, not at the top: the slowest imports, and only `status` needs them

    failures = []
    for address in broker_addresses(url):  # a cluster is up while one of its nodes answers
        try:
            connection = await aio_pika.connect(address, timeout=TIMEOUT_SECONDS)
        except Exception as exc:
            failures.append(f"{address.host}:{address.port}: {exc!r}")
            continue
        await connection.close()
        return True, f"connected to {address.host}:{address.port}"
    return False, "unreachable: " + "; ".join(failures)


async def _check_database(uri: str) -> tuple[bool, str]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(uri, serverSelectionTimeoutMS=int(TIMEOUT_SECONDS * 1000))
    try:
        await client.admin.command("ping")
    except Exception as exc:
        return False, f"unreachable: {type(exc).__name__}"
    finally:
        await client.close()
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


async def status(host: str) -> list[dict]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        checks = [_check_broker(setting("AMQP_URL")), _check_database(setting("MONGO_URI"))] + [
            _check_service(session, f"http://{host}:{service_port(name)}/readyz") for name in SERVICES
        ]
        results = await asyncio.gather(*checks)
    names = ["rabbitmq", "mongodb"] + [f"hookyard-{name}" for name in SERVICES]
    return [
        {"component": name, "ready": ok, "detail": detail} for name, (ok, detail) in zip(names, results, strict=True)
    ]


def _print_table(rows: list[dict]) -> None:
    style = Style(colour_wanted(sys.stdout))
    width = max(len(row["component"]) for row in rows)
    for row in rows:
        word = style("ready", "green") if row["ready"] else style("NOT READY", "red")
        print(f"{row['component'].ljust(width)}  {word}  {row['detail']}")


def run(args: argparse.Namespace) -> int:
    bound = setting("HOOKYARD_HTTP_HOST")
    host = args.host or ("127.0.0.1" if bound in ("0.0.0.0", "::") else bound)
    rows = asyncio.run(status(host))
    if args.json:
        print(orjson.dumps({"ready": all(r["ready"] for r in rows), "components": rows}).decode())
    else:
        _print_table(rows)
    return exit_codes.OK if all(row["ready"] for row in rows) else exit_codes.NOT_READY


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="is each dependency and service reachable and ready")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.add_argument("--host", help="where the services listen (default: HOOKYARD_HTTP_HOST)")
    parser.set_defaults(run=run)
