"""`hookyard login`: remember an ingest's URL and a tenant's API key under a profile name.

    hookyard login --url https://hooks.example.com [--profile work]   (the key is asked for, unechoed)
    echo "$KEY" | hookyard login --url ... --api-key -                (from standard input)

The key is tried first (a tenant call that changes nothing), so a typo is
never saved; then it is written to the profile file (profiles.py, 0600).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

import aiohttp
from yarl import URL

from hookyard_cli import exit_codes, profiles
from hookyard_cli.api import Api, CliError


def _key(flag: str | None) -> str:
    if flag == "-" or (flag is None and not sys.stdin.isatty()):
        key = sys.stdin.readline().strip()
    else:
        key = flag or os.environ.get("HOOKYARD_API_KEY") or getpass.getpass("API key: ").strip()
    if not key or not key.isprintable():
        raise CliError("no API key given")
    return key


def _url(flag: str) -> str:
    url = URL(flag)
    if url.scheme not in ("http", "https") or not url.host or not flag.isprintable():
        raise CliError(f"--url must be an http(s) URL, not {flag!r}")
    return flag.rstrip("/")


async def _check(url: str, key: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        await Api(url, key, session).call("GET", "/v1/sources", params={"limit": "1"})


def run(args: argparse.Namespace) -> int:
    url, key = _url(args.url), _key(args.api_key)
    asyncio.run(_check(url, key))
    name = args.profile or profiles.active_name()
    path = profiles.save(name, profiles.Profile(url, key))
    print(f"Logged in to {url} as profile {name!r} (saved in {path}).")
    return exit_codes.OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("login", help="save an ingest's URL and an API key as a profile")
    parser.add_argument("--url", required=True, help="the ingest's URL")
    parser.add_argument("--api-key", help="the tenant's API key; '-' reads it from stdin (default: asked for)")
    parser.add_argument("--profile", help="the profile's name (default: $HOOKYARD_PROFILE, else default)")
    parser.set_defaults(run=run)
