"""What the CLI writes to a terminal: colour only where it helps, and a progress bar.

Colour is used only when the stream is a terminal, `NO_COLOR` is not set
(https://no-color.org) and `TERM` is not `dumb`; piped output stays plain.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

CODES = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}


def colour_wanted(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class Style:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        return "\033[" + ";".join(CODES[n] for n in names) + "m" + text + "\033[0m"

    def status(self, status: int | None, text: str) -> str:
        """An HTTP answer's colour: green 2xx, yellow 3xx/4xx, red 5xx and no answer."""
        if status is not None and 200 <= status < 300:
            return self(text, "green")
        if status is not None and status < 500:
            return self(text, "yellow")
        return self(text, "red")


class ProgressBar:
    """`[#########...........]  9/20  label` — redrawn in place on a terminal, a line per change elsewhere."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.live = hasattr(stream, "isatty") and stream.isatty()
        self._last = ""

    def update(self, done: int, label: str = "") -> None:
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total}  {label}".rstrip()
        if line == self._last:
            return
        self._last = line
        if self.live:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.live and self._last:
            self.stream.write("\n")
            self.stream.flush()
