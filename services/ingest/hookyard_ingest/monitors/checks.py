"""The check log: one record per ping a monitor received (seed 004's received-webhook log).

Written behind the ping's answer, many records per `insert_many`, like the
delivery attempt records: a check is history, and the ping's effect on the
monitor is already stored when it is answered. Records expire
HOOKYARD_MONITOR_CHECK_RETENTION_DAYS after their `at` (monitors/history.py).
A ping's body is kept as text up to `STORED_BODY_LIMIT` bytes, as healthchecks
keeps 100 KB: beyond that it is cut, and the check says so (`body_truncated`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from hookyard_common.core.batching import WriteBehind
from hookyard_common.monitors.history import CHECKS
from hookyard_common.schemas import sortable_id
from hookyard_common.store.client import Store

log = logging.getLogger(__name__)

#: The bytes of a ping's body kept with its check and as the monitor's `last_body`.
STORED_BODY_LIMIT = 102_400


def stored_body(body: bytes) -> tuple[str | None, bool]:
    """The body as kept (None when empty), and whether it was cut to the limit."""
    if not body:
        return None, False
    return body[:STORED_BODY_LIMIT].decode("utf-8", errors="replace"), len(body) > STORED_BODY_LIMIT


class CheckLog:
    def __init__(self, store: Store):
        collection = store[CHECKS]

        async def write(records: Sequence[dict]) -> None:
            await collection.insert_many(list(records), ordered=False)

        def lost(exc: BaseException, records: Sequence[dict]) -> None:
            log.error("could not record monitor checks", extra={"count": len(records), "error": repr(exc)})

        self._writer: WriteBehind[dict] = WriteBehind(write, on_error=lost)

    async def record(self, monitor_id: str, tenant_id: str, at: datetime, **fields) -> str:
        """Queue one check; its id. `fields`: method, client_ip, outcome, status, state, body, ..."""
        check_id = sortable_id("chk")
        await self._writer.add(
            {
                "_id": check_id,
                "monitor_id": monitor_id,
                "tenant_id": tenant_id,
                "at": at,
                **fields,
            }
        )
        return check_id

    async def flush(self) -> None:
        await self._writer.drain()


def render_check(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "at": doc["at"].isoformat(),
        "outcome": doc["outcome"],
        "source": doc.get("source"),
        "status": doc.get("status"),
        "state": doc.get("state"),
        "message": doc.get("message"),
        "metadata": doc.get("metadata") or {},
        "mapped_value": doc.get("mapped_value"),
        "method": doc["method"],
        "client_ip": doc["client_ip"],
        "user_agent": doc.get("user_agent"),
        "content_type": doc.get("content_type"),
        "body": doc.get("body"),
        "body_size": doc.get("body_size", 0),
        "body_truncated": doc.get("body_truncated", False),
        "kind": doc.get("kind"),
        "exit_status": doc.get("exit_status"),
        "rid": doc.get("rid"),
        "run_seconds": doc.get("run_seconds"),
    }
