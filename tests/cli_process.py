"""The `hookyard` CLI run as a real process in tests, its output read as it comes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from helpers import BIN


def cli_env(state_dir: Path, url: str | None = None, api_key: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: its own state, config and XDG directories, so nothing of the developer's
    (`.hookyard/env`, `hookyard login` profiles, running listeners) leaks in or out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_") and k != "NO_COLOR"}
    env["HOOKYARD_STATE_DIR"] = str(state_dir)
    env["XDG_CONFIG_HOME"] = str(state_dir / "xdg-config")
    env["XDG_STATE_HOME"] = str(state_dir / "xdg-state")
    if url:
        env["HOOKYARD_URL"] = url
    if api_key:
        env["HOOKYARD_API_KEY"] = api_key
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    """Run a command to its end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "hookyard"), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


class CliProcess:
    """A long-running command (`listen --json`, `messages tail --json`): JSON lines on stdout."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.lines: list[dict] = []
        self._taken: set[int] = set()  # lines already returned by wait_for

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> CliProcess:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "hookyard"), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def _next_line(self) -> dict:
        raw = await self.process.stdout.readline()
        if not raw:
            err = (await self.process.stderr.read()).decode()
            raise AssertionError(f"the CLI ended (exit {await self.process.wait()}): {err}")
        line = json.loads(raw)
        self.lines.append(line)
        return line

    async def wait_for(self, kind: str | None = None, timeout: float = 30.0, **fields) -> dict:
        """The first line not returned before of this `type` (any when None) with these fields."""

        def match(line: dict) -> bool:
            return kind in (None, line.get("type")) and all(line.get(k) == v for k, v in fields.items())

        async def find() -> dict:
            checked = 0
            while True:
                for index in range(checked, len(self.lines)):
                    if index not in self._taken and match(self.lines[index]):
                        self._taken.add(index)
                        return self.lines[index]
                checked = len(self.lines)
                await self._next_line()

        return await asyncio.wait_for(find(), timeout)

    async def stop(self, timeout: float = 30.0) -> tuple[int, str]:
        """Ctrl-C: (exit code, stderr); the rest of stdout is read into `lines`."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        self.lines.extend(json.loads(raw) for raw in out.splitlines() if raw.strip())
        return self.process.returncode, err.decode()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
