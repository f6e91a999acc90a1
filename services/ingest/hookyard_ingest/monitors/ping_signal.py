"""What a ping says: pure parsing of `/ping/{token}[/{kind}][?status=&msg=]` and its body.

The path's kind is a status (`up`, `down`, `degraded`) or a job runner's
word, as healthchecks spells them: `start` (a run begins: recorded, the
state and deadlines stay), `log` (recorded only), `fail`, or an exit status
(`0` is a success, `1`-`255` a failure, so `curl .../ping/$TOKEN/$?` works).

Precedence: a kind in the path, then `?status=`, then the body (the
monitor's payload mapping when it has one, else `{"status", "message",
"metadata"}`), and with none of those the ping is a heartbeat (`up`). A body
that starts with `{` is read as JSON whatever its Content-Type (curl's `-d`
sends form encoding); other bodies are only recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hookyard_common.monitors import payload_mapping
from hookyard_common.monitors.payload_mapping import MAX_MESSAGE, PayloadMapping
from hookyard_common.schemas import MonitorState
from hookyard_ingest.edge import json_input

PUSHABLE = ("up", "down", "degraded")
#: Kinds that say nothing about the state, and leave the deadlines where they are.
NOT_ALIVE = ("start", "log")
EXIT_STATUS = re.compile(r"^(0|[1-9][0-9]{0,2})$")
MAX_EXIT_STATUS = 255
#: A run id pairing a start with its finish (healthchecks sends a UUID; any short token will do).
RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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
    # start, success, fail, log, up, down or degraded: what the ping said (the monitor's `last_ping_kind`).
    kind: str = "success"
    exit_status: int | None = None
    # The `rid` parameter: which of a job's concurrent runs this ping belongs to.
    rid: str | None = None

    @property
    def alive(self) -> bool:
        """Whether the ping counts as the one expected: it refreshes the deadlines."""
        return self.kind not in NOT_ALIVE


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


def _path_kind(raw: str, message: str | None) -> Signal:
    """The signal of a path's kind; a SignalError naming the kinds there are for anything else."""
    word = raw.lower()
    if word in PUSHABLE:
        return Signal(MonitorState(word), "path", message, kind=word)
    if word in NOT_ALIVE:
        return Signal(None, "path", message, kind=word)
    if word == "fail":
        return Signal(MonitorState.down, "path", message, kind="fail")
    if EXIT_STATUS.match(raw) and int(raw) <= MAX_EXIT_STATUS:
        code = int(raw)
        if code == 0:
            return Signal(MonitorState.up, "path", message, kind="success", exit_status=0)
        return Signal(MonitorState.down, "path", message or f"exit status {code}", kind="fail", exit_status=code)
    shown = repr(raw) if len(raw) <= 100 else repr(raw[:100]) + "..."
    raise SignalError(
        "invalid_status",
        f"the path's kind must be one of up, down, degraded, start, fail, log or an exit status 0-255 (got {shown})",
        "status",
    )


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


def run_id(query: Mapping[str, str]) -> str | None:
    """The `rid` parameter: which of a job's concurrent runs a ping belongs to."""
    rid = query.get("rid")
    if rid is not None and not RUN_ID.match(rid):
        raise SignalError("invalid_rid", "rid must be 1 to 64 letters, digits, '.', '_' or '-' (a UUID fits)", "rid")
    return rid


def read(
    path_kind: str | None,
    query: Mapping[str, str],
    body: bytes,
    media: str,
    mapping: PayloadMapping | None,
) -> Signal:
    message = _message(
        query.get("msg", query.get("message")), "the msg parameter's", "msg" if "msg" in query else "message"
    )
    if path_kind is not None:
        return _path_kind(path_kind, message)
    if "status" in query:
        pushed = _status(query["status"], "the status parameter's")
        return Signal(pushed, "query", message, kind=pushed.value)
    document = _json(body, media)
    if mapping is not None and document is not None:
        mapped = payload_mapping.apply(mapping, document)
        status = MonitorState(mapped.status) if mapped.status is not None else None
        kind = status.value if status is not None else "success"
        return Signal(status, "mapping", message or mapped.message, mapped_value=mapped.value, kind=kind)
    if isinstance(document, dict) and {"status", "message", "metadata"} & document.keys():
        metadata = document.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SignalError("invalid_metadata", "the body's metadata must be an object", "metadata")
        status = _status(document["status"], "the body's") if document.get("status") is not None else MonitorState.up
        source = "body" if document.get("status") is not None else "heartbeat"
        kind = status.value if source == "body" else "success"
        return Signal(status, source, _message(document.get("message"), "the body's") or message, metadata, kind=kind)
    return Signal(MonitorState.up, "heartbeat", message)
