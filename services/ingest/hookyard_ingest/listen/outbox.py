"""Frames waiting to be written to one listener's socket, within a byte budget.

The broker pushes events as they come and cannot be told to wait for one
slow listener, so `offer` never waits: a frame that does not fit is refused
and the caller drops the listener (it catches up from the message log when
it reconnects). That bounds what the ingest holds per listener. A frame is
always taken when the outbox is empty, so one large message is not mistaken
for slowness.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self._frames: deque[str] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def offer(self, frame: str) -> bool:
        """Queue a frame; False when it does not fit in the budget."""
        size = len(frame)  # characters: bytes for JSON, whose bodies are mostly ASCII or base64
        if self._frames and self._bytes + size > self.limit_bytes:
            return False
        self._frames.append(frame)
        self._bytes += size
        self._ready.set()
        return True

    async def take(self) -> str:
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame
