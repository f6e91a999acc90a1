"""Structured logging: one JSON object a line on stderr, for log shippers.

Extra fields passed as `logger.info("...", extra={"event_id": ...})` become
top-level keys, and so do `trace_id` and `span_id` when tracing is on (tracing.py).
`HOOKYARD_LOG_FORMAT=text` gives plain lines for a terminal.

Every line written while a request or a broker message is handled also carries the ids in
hand (`tenant_id`, `event_id`, `endpoint_id`, `request_id`): the boundary opens a `scope`,
the code that learns an id `bind`s it, and the formatter adds them, so no call site passes
them. They live in a context variable: asyncio gives each request and each message its own
task, hence its own ids, and the scope's end forgets them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

from hookyard_common.core import tracing

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

#: The ids in hand in the request or message being handled; replaced by `bind`, never changed.
_IN_HAND: ContextVar[Mapping[str, str]] = ContextVar("hookyard_log_ids", default=MappingProxyType({}))


@contextlib.contextmanager
def scope(**ids: str) -> Iterator[None]:
    """The handling of one request or message: its log lines carry `ids` and whatever is
    bound inside, and none of them once it ends (a keep-alive connection's next request)."""
    token = _IN_HAND.set(ids)
    try:
        yield
    finally:
        _IN_HAND.reset(token)


def bind(**ids: str) -> None:
    """Add ids just learnt (the caller's tenant, the event made) to the rest of this request's
    or message's log lines, and to those of the tasks it starts from now on."""
    _IN_HAND.set({**_IN_HAND.get(), **ids})


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(tracing.ids())  # trace_id and span_id of the span the record was made in
        entry.update(_IN_HAND.get())  # then anything passed as `extra=` over them
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aio-pika logs every reconnect attempt at length; one line from us is enough.
    logging.getLogger("aio_pika").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiormq").setLevel(max(logging.WARNING, root.level))
