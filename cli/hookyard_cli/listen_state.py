"""Where a running `hookyard listen` says how it fares, for `listen status` and `listen stop`.

Each listener, in the foreground or started with `--background`, keeps one
JSON file named after its source or endpoint in the user's state directory
(`$XDG_STATE_HOME/hookyard/listen/`, else `~/.local/state/hookyard/listen/` on
Linux), rewritten whole on each change: its pid, whether it is connected and
since when, how many messages it forwarded and the last error. A file whose
process is gone (killed, machine restarted) is stale and removed when read.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import platformdirs


@dataclass
class ListenerState:
    pid: int
    target: str  # "source" or "endpoint"
    target_id: str
    forward_to: str
    url: str
    started_at: str
    connected: bool = False
    connected_since: str | None = None
    forwarded: int = 0
    last_error: str | None = None
    log: str | None = None  # the output of a listener started with --background


def directory() -> Path:
    return Path(platformdirs.user_state_dir("hookyard", appauthor=False)) / "listen"


def path_of(target_id: str) -> Path:
    return directory() / f"{target_id}.json"


def save(state: ListenerState) -> None:
    path = path_of(state.target_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(asdict(state)))
    os.replace(temporary, path)  # readers see the old state or the new one, never half of one


def remove(target_id: str, pid: int) -> None:
    """Forget a listener's file, unless another process has written it since."""
    state = _read(path_of(target_id))
    if state is not None and state.pid == pid:
        path_of(target_id).unlink(missing_ok=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though not ours to signal
    return True


def signal_to(state: ListenerState, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(state.pid, signum)


def running() -> list[ListenerState]:
    """The listeners whose process still runs, oldest first; stale files are removed."""
    found = []
    for path in sorted(directory().glob("*.json")) if directory().exists() else []:
        state = _read(path)
        if state is None or not alive(state.pid):
            path.unlink(missing_ok=True)
        else:
            found.append(state)
    return sorted(found, key=lambda state: state.started_at)


def _read(path: Path) -> ListenerState | None:
    try:
        return ListenerState(**orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None
