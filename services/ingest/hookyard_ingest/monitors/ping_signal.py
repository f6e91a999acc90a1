"""What a ping says: pure parsing of `/ping/{token}[/{status}][?status=&msg=]` and its body.

Precedence: a status in the path, then `?status=`, then the body (the
monitor's payload mapping when it has one, else `{"status", "message",
"metadata"}`), and with none of those the ping is a heartbeat (`up`). A body
that starts with `{` is read as JSON whatever its Content-Type (curl's `-d`
sends form encoding); other bodies are only recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hookyard_common.monitors import payload_mapping
from hookyard_common.monitors.payload_mapping import PayloadMapping
from hookyard_common.schemas import MonitorState
from hookyard_ingest.edge import json_input

PUSHABLE = ("up", "down", "degraded")
MAX_MESSAGE = 1_000


class SignalError(ValueError):
    def __init__(self, code: str, message: str, field: str = "(body)"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Signal:
    # None: the sender is alive but said nothing the monitor understands (an
    # unmapped value): deadlines are refreshed, the state stays.
    status: MonitorState | None
    # heartbeat, path, query, body or mapping: where the status came from.
    source: str
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The value found by a payload mapping (for the check record).
    mapped_value: str | None = None


def _status(raw: Any, where: str) -> MonitorState:
    if not isinstance(raw, str) or raw.lower() not in PUSHABLE:
        shown = repr(raw) if len(repr(raw)) <= 100 else repr(raw)[:100] + "..."
        raise SignalError("invalid_status", f"{where} status must be one of up, down, degraded (got {shown})", "status")
    return MonitorState(raw.lower())


def _message(raw: Any, where: str, field: str = "message") -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise SignalError("invalid_message", f"{where} message must be a string", field)
    if len(raw) > MAX_MESSAGE:
        raise SignalError("invalid_message", f"{where} message must be at most {MAX_MESSAGE} characters", field)
    return raw


def _json(body: bytes, media: str) -> Any:
    """The body as JSON; None when it is not JSON (and does not claim to be). Its metadata is
    stored with the check and the flip, so JSON that could not be stored is refused."""
    claims_json = media == "application/json" or media.endswith("+json")
    if not body.strip() or (not claims_json and not body.lstrip().startswith(b"{")):
        return None
    try:
        return json_input.loads(body)
    except json_input.JsonInputError as exc:
        if claims_json or exc.code != "malformed_json":
            raise SignalError(exc.code, exc.message, exc.field) from None
        return None


def read(
    path_status: str | None,
    query: Mapping[str, str],
    body: bytes,
    media: str,
    mapping: PayloadMapping | None,
) -> Signal:
    message = _message(
        query.get("msg", query.get("message")), "the msg parameter's", "msg" if "msg" in query else "message"
    )
    if path_status is not None:
        return Signal(_status(path_status, "the path's"), "path", message)
    if "status" in query:
        return Signal(_status(query["status"], "the status parameter's"), "query", message)
    document = _json(body, media)
    if mapping is not None and document is not None:
        mapped = payload_mapping.apply(mapping, document)
        status = MonitorState(mapped.status) if mapped.status is not None else None
        return Signal(status, "mapping", message or mapped.message, mapped_value=mapped.value)
    if isinstance(document, dict) and {"status", "message", "metadata"} & document.keys():
        metadata = document.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SignalError("invalid_metadata", "the body's metadata must be an object", "metadata")
        status = _status(document["status"], "the body's") if document.get("status") is not None else MonitorState.up
        source = "body" if document.get("status") is not None else "heartbeat"
        return Signal(status, source, _message(document.get("message"), "the body's") or message, metadata)
    return Signal(MonitorState.up, "heartbeat", message)
