"""Helpers shared by tests: running service processes and waiting on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hookyard_common.settings import Settings

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def service_env(settings: Settings) -> dict[str, str]:
    """The environment variables that give a service process these settings."""
    env = dict(os.environ)
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias.choices[0]
        value = getattr(settings, name)
        env[alias] = json.dumps(list(value)) if isinstance(value, tuple) else str(value)
    return env



def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not listening (yet)
        return 0, b""


def wait_until(check, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_service(name: str, settings: Settings, log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen(
        [str(BIN / f"hookyard-{name}")],
        env=service_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
