"""The `hookyard listen` WebSocket protocol, shared by the ingest (server) and the CLI (client).

The server sends text frames, each one JSON object told apart by `type`:

- `hello`: the listener is subscribed; every event accepted after `at`
  (server time) reaches this connection live.
- `event`: one message, as the developer's app should receive it
  (`request`); `replayed` when it was read from the message log.
- `caught_up`: the catch-up from the message log asked for with `?since=`
  is over; with no gap, the stream now covers everything after `hello.at`.
- `heartbeat`: the server's time. Frames leave in order, so a heartbeat
  means every event queued before it has been sent.

Clients send nothing but WebSocket control frames. Timestamps come from the
server, so a client resumes from the server's clock, never its own.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hookyard_common.schemas import Inbound

# Close codes the ingest uses (4000-4999 are the application's own).
CLOSE_SHUTDOWN = 1012  # the ingest is restarting: reconnect (to any replica)
CLOSE_BROKER_LOST = 1011  # the ingest lost the broker: reconnect to catch up
CLOSE_TOO_SLOW = 4008  # more was waiting than HOOKYARD_LISTEN_BUFFER_BYTES
CLOSE_TARGET_GONE = 4004  # the source or endpoint was deleted: do not reconnect


class Frame(BaseModel):
    # Clients ignore fields they do not know, so the server may add some.
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_text(self) -> str:
        return orjson.dumps(self.model_dump(mode="json")).decode()


class Request(Frame):
    """The HTTP request to make to the developer's app (the URL is the app's own)."""

    method: str
    query: str = ""  # the original query string, without `?`
    headers: list[tuple[str, str]]
    body: str
    body_encoding: Literal["utf-8", "base64"] = "utf-8"

    @classmethod
    def of(cls, method: str, headers: list[tuple[str, str]], raw_body: bytes, query: str = "") -> Request:
        body, encoding = Inbound.encode_body(raw_body)
        return cls(method=method, query=query, headers=headers, body=body, body_encoding=encoding)

    @property
    def raw_body(self) -> bytes:
        return self.body.encode() if self.body_encoding == "utf-8" else base64.b64decode(self.body)


class Hello(Frame):
    type: Literal["hello"] = "hello"
    listener_id: str
    target: Literal["source", "endpoint"]
    target_id: str
    at: datetime
    heartbeat_seconds: float
    catching_up: bool = False


class EventFrame(Frame):
    type: Literal["event"] = "event"
    id: str
    event_type: str
    received_at: datetime
    source_id: str | None = None
    replayed: bool = False
    request: Request


class CaughtUp(Frame):
    type: Literal["caught_up"] = "caught_up"
    count: int
    # More messages than one catch-up sends were in the window; the oldest were sent.
    truncated: bool = False
    at: datetime


class Heartbeat(Frame):
    type: Literal["heartbeat"] = "heartbeat"
    at: datetime


AnyFrame = Annotated[Hello | EventFrame | CaughtUp | Heartbeat, Field(discriminator="type")]
_FRAMES = TypeAdapter(AnyFrame)


def parse(data: str | bytes) -> Hello | EventFrame | CaughtUp | Heartbeat:
    """One frame from the server; raises pydantic's ValidationError for anything else."""
    return _FRAMES.validate_json(data)
