"""`hookyard parked`: the messages parked in `hookyard.invalid`, for operators (admin token).

    hookyard parked list [--limit 50] [--json]
    hookyard parked show KEY
    hookyard parked redrive KEY | --all

It calls the ingest's admin API (`/v1/admin/parked`), so it needs only the
ingest's URL and `HOOKYARD_ADMIN_TOKEN`, not the broker's credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import aiohttp
import orjson

from hookyard_cli.api import Api, CliError, add_connection_flags, ingest_url


def _admin_token(args: argparse.Namespace) -> str:
    token = args.admin_token or os.environ.get("HOOKYARD_ADMIN_TOKEN")
    if not token:
        raise CliError("parked messages take the admin token: set HOOKYARD_ADMIN_TOKEN")
    return token


def _call(args: argparse.Namespace, method: str, path: str, params: dict | None = None) -> Any:
    async def call() -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            return await Api(ingest_url(args.url), _admin_token(args), session).call(method, path, params=params)

    return asyncio.run(call())


def list_parked(args: argparse.Namespace) -> int:
    body = _call(args, "GET", "/v1/admin/parked", {"limit": str(args.limit)})
    if args.json:
        print(orjson.dumps(body).decode())
        return 0
    print(f"{body['count']} parked in hookyard.invalid")
    for row in body["data"]:
        age = "?" if row["age_seconds"] is None else f"{row['age_seconds']:.0f}s"
        origin = row["origin_queue"] or "-"
        print(f"{row['key']}  {row['reason'] or '-'}  from {origin}  {age} ago  {row['routing_key'] or ''}")
    return 0


def show_parked(args: argparse.Namespace) -> int:
    print(orjson.dumps(_call(args, "GET", f"/v1/admin/parked/{args.key}"), option=orjson.OPT_INDENT_2).decode())
    return 0


def redrive_parked(args: argparse.Namespace) -> int:
    if bool(args.key) == args.all:
        raise CliError("name one parked message (KEY) or pass --all")
    path = "/v1/admin/parked/redrive" if args.all else f"/v1/admin/parked/{args.key}/redrive"
    body = _call(args, "POST", path)
    print(orjson.dumps(body).decode() if args.json else f"{body['redriven']} sent back")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    actions = sub.add_parser("parked", help="messages parked in hookyard.invalid (admin)").add_subparsers(
        dest="action", required=True
    )
    listing = actions.add_parser("list", help="how many are parked, and the first of them")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_parked)
    show = actions.add_parser("show", help="one parked message, headers and body")
    show.add_argument("key")
    show.set_defaults(run=show_parked)
    redrive = actions.add_parser("redrive", help="send parked messages back to the queue they came from")
    redrive.add_argument("key", nargs="?")
    redrive.add_argument("--all", action="store_true", help="every parked message from Hookyard's queues")
    redrive.add_argument("--json", action="store_true")
    redrive.set_defaults(run=redrive_parked)
    for parser in (listing, show, redrive):
        parser.add_argument("--admin-token", help="default: $HOOKYARD_ADMIN_TOKEN (prefer the variable)")
        add_connection_flags(parser, key=False)
