"""Showing log files as `tail [-f]` does: the last lines of each, then what is added, each line prefixed by its name.

Used by `hookyard logs` (the local services') and `hookyard listen logs` (the
background listeners'). Whole lines only: a line still being written is
shown once it ends; a file that shrank (rotated, truncated) is read again from the top.
"""

from __future__ import annotations

import time
from pathlib import Path

POLL_SECONDS = 0.5


def show(paths: dict[str, Path], lines: int, follow: bool) -> int:
    width = max(len(name) for name in paths)
    offsets = {}
    for name, path in paths.items():
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines()[-lines:]:
            print(f"{name.ljust(width)} | {line}")
        offsets[name] = len(text.encode())
    try:
        while follow:
            time.sleep(POLL_SECONDS)
            for name, path in paths.items():
                if not path.exists():
                    continue
                if path.stat().st_size < offsets[name]:
                    offsets[name] = 0
                with open(path, "rb") as log:
                    log.seek(offsets[name])
                    added = log.read()
                complete = added[: added.rfind(b"\n") + 1]
                offsets[name] += len(complete)
                for line in complete.decode(errors="replace").splitlines():
                    print(f"{name.ljust(width)} | {line}", flush=True)
    except KeyboardInterrupt:
        pass
    return 0
