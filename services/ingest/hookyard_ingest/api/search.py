"""The search of the event lists (`GET /v1/events`, `GET /v1/received-events`): filters, bounded pages.

Two kinds of filter, served two ways, both within the calling tenant:

- what a record holds (`event_type`, `source_id`, `since`/`until`) goes to
  MongoDB, through an index that starts with the tenant id;
- what happened to it since (`status`, `endpoint_id`) is derived for the
  candidates the first kind found, a chunk at a time, from the attempt log
  and the dead letters (delivery/event_status.py, two indexed queries).

The second kind cannot be an index (a status changes with every attempt),
so it is **bounded**: one page reads at most `search_scan_limit` candidates,
then ends, possibly short or empty, with a `next_cursor` to go on from where
it stopped. Whatever the filters, a request costs at most that much of the
tenant's own data, never a scan of the collection.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from aiohttp import web

from hookyard_common.delivery.endpoints import EVENT_PATTERN
from hookyard_common.delivery.event_filter import as_query
from hookyard_common.delivery.event_status import STATUSES, Status, deliveries
from hookyard_common.store.client import Store
from hookyard_common.store.pagination import CursorError, decode_cursor, encode_cursor
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import query_limit, refuse_unknown_params, time_param

#: The query parameters every search takes; a list adds its own (`source_id`).
SEARCH_PARAMS = frozenset({"event_type", "status", "endpoint_id", "since", "until", "limit", "cursor"})
#: An id as the API hands them out (`ep_…`, `src_…`): anything else cannot match, so it is refused.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,128}")

ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Search:
    """A search's filters, read and checked; `event_type` as a MongoDB filter value."""

    event_type: str | dict | None
    status: Status | None
    endpoint_id: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    after: tuple[datetime, str] | None

    @property
    def derived(self) -> bool:
        """Whether a filter needs the attempt log: the pages are then bounded."""
        return self.status is not None or self.endpoint_id is not None


@dataclass(frozen=True)
class Candidate(Generic[ItemT]):
    """One record the indexed filters found: where it sits (its cursor), its event, and itself."""

    position: tuple[datetime, str]
    event_id: str | None
    item: ItemT


def single(request: web.Request, name: str) -> str | None:
    """A parameter's one value: given twice, which one counts would be a guess."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "repeated_parameter", f"{name} may be given once", field=name)
    return values[0] if values else None


def identifier(request: web.Request, name: str) -> str | None:
    value = single(request, name)
    if value is not None and not ID_PATTERN.fullmatch(value):
        raise ApiError(400, "invalid_id", f"{name} must be an id such as those this API returns", field=name)
    return value


def read_search(request: web.Request, extra: frozenset[str] = frozenset()) -> Search:
    """The search the query asks for, or a 400 naming the parameter at fault."""
    refuse_unknown_params(request, SEARCH_PARAMS | extra)
    for name in SEARCH_PARAMS | extra:
        single(request, name)
    pattern = single(request, "event_type")
    if pattern is not None and not (len(pattern) <= 256 and re.fullmatch(EVENT_PATTERN, pattern)):
        raise ApiError(
            400,
            "invalid_event_type",
            "event_type must be an event type or a pattern such as user.* (segments of letters, digits, _ and -)",
            field="event_type",
        )
    status = single(request, "status")
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, "invalid_status", f"status must be one of {', '.join(STATUSES)}", field="status", accepted=STATUSES
        )
    since, until = time_param(request, "since"), time_param(request, "until")
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "invalid_window", "since must be before until", field="until")
    try:
        after = decode_cursor(cursor) if (cursor := single(request, "cursor")) else None
    except CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), field="cursor") from None
    return Search(
        event_type=as_query(pattern) if pattern is not None else None,
        status=status,  # checked against STATUSES above
        endpoint_id=identifier(request, "endpoint_id"),
        since=since,
        until=until,
        limit=query_limit(request),
        after=after,
    )


async def search_page(
    store: Store,
    tenant_id: str,
    search: Search,
    candidates: AsyncGenerator[Candidate[ItemT], None],
    render: Callable[[ItemT, Status], dict],
    scan_limit: int,
) -> web.Response:
    """A page of the candidates that pass the derived filters, each rendered with its status."""
    chunk_size = min(scan_limit, 200) if search.derived else search.limit + 1
    kept: list[tuple[Candidate[ItemT], Status]] = []
    chunk: list[Candidate[ItemT]] = []
    scanned, stopped_at = 0, None
    async with aclosing(candidates):
        async for candidate in candidates:
            chunk.append(candidate)
            scanned += 1
            if len(chunk) < chunk_size and scanned < scan_limit:
                continue
            kept += await judged(store, tenant_id, search, chunk)
            chunk = []
            if len(kept) > search.limit or scanned >= scan_limit:
                stopped_at = candidate.position
                break
        kept += await judged(store, tenant_id, search, chunk)
    if len(kept) > search.limit:
        kept = kept[: search.limit]
        stopped_at = kept[-1][0].position
    return web.json_response(
        {
            "data": [render(c.item, status) for c, status in kept],
            "next_cursor": encode_cursor(*stopped_at) if stopped_at else None,
        }
    )


async def judged(
    store: Store, tenant_id: str, search: Search, chunk: list[Candidate[ItemT]]
) -> list[tuple[Candidate[ItemT], Status]]:
    """The chunk's candidates that pass the status and endpoint filters, with their status."""
    found = await deliveries(store, tenant_id, [c.event_id for c in chunk if c.event_id is not None])
    passed = []
    for candidate in chunk:
        ours = found.get(candidate.event_id or "")
        if search.endpoint_id is not None and (ours is None or search.endpoint_id not in ours.endpoint_ids):
            continue
        status = ours.status(search.endpoint_id) if ours is not None else "pending"
        if search.status is None or status == search.status:
            passed.append((candidate, status))
    return passed
