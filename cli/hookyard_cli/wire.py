"""The `hookyard listen` WebSocket protocol as the CLI reads it.

The ingest's side is `hookyard_common/listen_wire.py`; the CLI keeps its own
reading of the same frames so that it installs without the server's library
(docs/migrating.md#the-cli-on-its-own). Fields the CLI does not know are
ignored, so the server may add some; `tests/listen/test_listen_units.py`
parses every frame the server's models write with these.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# Close codes the ingest uses (4000-4999 are the application's own).
CLOSE_SHUTDOWN = 1012  # the ingest is restarting: reconnect (to any replica)
CLOSE_TARGET_GONE = 4004  # the source or endpoint was deleted: do not reconnect


class Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Request(Frame):
    """The HTTP request to make to the developer's app (the URL is the app's own)."""

    method: str
    query: str = ""
    headers: list[tuple[str, str]]
    body: str
    body_encoding: Literal["utf-8", "base64"] = "utf-8"

    @property
    def raw_body(self) -> bytes:
        return self.body.encode() if self.body_encoding == "utf-8" else base64.b64decode(self.body)


class Hello(Frame):
    type: Literal["hello"]
    listener_id: str
    target: Literal["source", "endpoint"]
    target_id: str
    at: datetime
    catching_up: bool = False


class EventFrame(Frame):
    type: Literal["event"]
    id: str
    event_type: str
    received_at: datetime
    replayed: bool = False
    request: Request


class CaughtUp(Frame):
    type: Literal["caught_up"]
    count: int
    truncated: bool = False
    at: datetime


class Heartbeat(Frame):
    type: Literal["heartbeat"]
    at: datetime


_FRAMES: TypeAdapter[Hello | EventFrame | CaughtUp | Heartbeat] = TypeAdapter(
    Annotated[Hello | EventFrame | CaughtUp | Heartbeat, Field(discriminator="type")]
)


def parse(data: str | bytes) -> Hello | EventFrame | CaughtUp | Heartbeat:
    """One frame from the server; raises pydantic's ValidationError for anything else."""
    return _FRAMES.validate_json(data)
