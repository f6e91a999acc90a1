"""The tenant API as the CLI calls it: where the ingest is, which key, and its errors.

The ingest's URL comes from `--url`, else `HOOKYARD_URL`, else the local
stack (`http://127.0.0.1:$HOOKYARD_INGEST_PORT`, 8000); the API key from
`--api-key`, else `HOOKYARD_API_KEY`. `.hookyard/env`, written by `make up`
(and by `hookyard tenants create --save`), supplies both when unset.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


class CliError(Exception):
    """Something the user must fix; printed as `error: ...` with exit code 2."""


class ApiFailure(CliError):
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
    parser.add_argument("--url", help="the ingest's URL (default: $HOOKYARD_URL, else the local stack)")
    if key:
        parser.add_argument("--api-key", help="the tenant's API key (default: $HOOKYARD_API_KEY; prefer the variable)")


def ingest_url(flag: str | None) -> str:
    url = flag or os.environ.get("HOOKYARD_URL")
    if not url:
        url = f"http://127.0.0.1:{os.environ.get('HOOKYARD_INGEST_PORT', '8000')}"
    return url.rstrip("/")


def api_key(flag: str | None) -> str:
    key = flag or os.environ.get("HOOKYARD_API_KEY")
    if not key:
        raise CliError("no API key: set HOOKYARD_API_KEY (or pass --api-key)")
    return key


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
            raise CliError(f"cannot reach the ingest at {self.base}: {exc}") from None
        body = _json(text)
        if status >= 400:
            raise failure(status, body, text)
        return body


def failure(status: int, body: Any, text: str = "") -> ApiFailure:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ApiFailure(status, error.get("code", "error"), error.get("message", ""))
    return ApiFailure(status, "http_error", text[:200] or "no explanation given")


def _json(text: str) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None
