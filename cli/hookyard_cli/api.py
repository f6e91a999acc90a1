"""The tenant API as the CLI calls it: where the ingest is, which key, and its errors.

The ingest's URL comes from `--url`, else `HOOKYARD_URL`, else the profile
`hookyard login` saved (profiles.py), else the local stack
(`http://127.0.0.1:$HOOKYARD_INGEST_PORT`, 8000); the API key from
`--api-key`, else `HOOKYARD_API_KEY`, else the profile. `.hookyard/env`,
written by `make up` (and by `hookyard tenants create --save`), supplies the
variables when unset. Each kind of failure has its exit code (exit_codes.py).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from hookyard_cli import exit_codes, profiles


class CliError(Exception):
    """Something the user must fix; printed as `error: ...` with its exit code."""

    exit_code = exit_codes.USAGE


class ConnectionFailure(CliError):
    """What the command needs could not be reached."""

    exit_code = exit_codes.CONNECTION


class Refused(CliError):
    """The ingest refused what was asked, for good."""

    exit_code = exit_codes.API


class ApiFailure(Refused):
    """The ingest answered an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code


def unreachable(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, in a few words."""
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return str(exc.os_error.strerror or exc.os_error)


def add_connection_flags(parser: argparse.ArgumentParser, *, key: bool = True) -> None:
    parser.add_argument("--url", help="the ingest's URL (default: $HOOKYARD_URL, the profile, else the local stack)")
    if key:
        parser.add_argument("--api-key", help="the tenant's API key (default: $HOOKYARD_API_KEY, else the profile)")
    parser.add_argument("--profile", help="the `hookyard login` profile to use (default: $HOOKYARD_PROFILE, default)")


def ingest_url(flag: str | None) -> str:
    url = flag or os.environ.get("HOOKYARD_URL") or _from_profile("url")
    if not url:
        url = f"http://127.0.0.1:{os.environ.get('HOOKYARD_INGEST_PORT', '8000')}"
    return url.rstrip("/")


def api_key(flag: str | None) -> str:
    key = flag or os.environ.get("HOOKYARD_API_KEY") or _from_profile("api_key")
    if not key:
        raise CliError("no API key: run `hookyard login`, set HOOKYARD_API_KEY or pass --api-key")
    return key


def _from_profile(field: str) -> str | None:
    # Read only when neither flag nor variable says: a broken profile file then gets in no one's way.
    profile = profiles.load()
    return getattr(profile, field) if profile else None


def websocket_url(base: str, path: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + path
    return "ws://" + base.removeprefix("http://") + path


@dataclass
class Api:
    base: str
    token: str
    session: aiohttp.ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        """The parsed JSON answer; raises ApiFailure for an error answer, CliError when unreachable."""
        try:
            async with self.session.request(
                method, self.base + path, params=params, json=json, headers=self.auth
            ) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientError as exc:
            raise ConnectionFailure(f"cannot reach the ingest at {self.base}: {exc or type(exc).__name__}") from None
        body = json_or_none(text)
        if status >= 400:
            raise failure(status, body, text)
        return body


def failure(status: int, body: Any, text: str = "") -> ApiFailure:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ApiFailure(status, error.get("code", "error"), error.get("message", ""))
    return ApiFailure(status, "http_error", text[:200] or "no explanation given")


def json_or_none(text: str) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None
