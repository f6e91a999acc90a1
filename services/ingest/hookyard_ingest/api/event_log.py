"""The tenant's own events, read back: `GET /v1/events[/{event_id}[/attempts]]`.

Publishing is `api/events.py`'s; this module only reads the event log
(records/event_log.py) and, for any event of the tenant (its own or one a
source received), the attempts to deliver it, a page at a time.

- `GET /v1/events?event_type=&status=&endpoint_id=&since=&until=&limit=&cursor=`:
  newest first, searched as api/search.py describes;
- `GET /v1/events/{event_id}`: the event as it was published, and its status;
- `GET /v1/events/{event_id}/attempts?limit=&cursor=`: oldest first.
"""

from __future__ import annotations

from aiohttp import web

from hookyard_common.delivery import attempt_log
from hookyard_common.delivery.event_status import Status, deliveries
from hookyard_common.records import event_log
from hookyard_common.records.event_log import Logged
from hookyard_common.store.client import Store
from hookyard_common.store.pagination import CursorError, decode_cursor, encode_cursor
from hookyard_ingest.api.search import Candidate, read_search, search_page
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.request_io import PAGE_PARAMS, query_limit, refuse_unknown_params


def render_logged(logged: Logged, status: Status) -> dict:
    return {
        "id": logged.id,
        "event_type": logged.event_type,
        "logged_at": logged.logged_at.isoformat(),
        "status": status,
        # Set when the event could not be stored whole (buckets.stub): why.
        "unstorable": logged.unstorable,
    }


class EventLogRoutes:
    def __init__(self, store: Store, scan_limit: int):
        self.store = store
        self.scan_limit = scan_limit

    async def list(self, request: web.Request) -> web.Response:
        tenant_id = request[TENANT]["_id"]
        search = read_search(request)

        async def candidates():
            logged = event_log.newest(
                self.store,
                tenant_id,
                event_type=search.event_type,
                since=search.since,
                until=search.until,
                after=search.after,
            )
            async for one in logged:
                yield Candidate(one.position, one.id, one)

        try:
            return await search_page(self.store, tenant_id, search, candidates(), render_logged, self.scan_limit)
        except CursorError as exc:  # a cursor of another list: not a position in this log
            raise ApiError(400, "invalid_cursor", str(exc), field="cursor") from None

    async def get(self, request: web.Request) -> web.Response:
        tenant_id = request[TENANT]["_id"]
        event = await event_log.find(self.store, tenant_id, request.match_info["event_id"])
        if event is None:
            raise ApiError(404, "unknown_event", "no such event (or past its retention)")
        status = (await deliveries(self.store, tenant_id, [event.id])).get(event.id)
        shown = event.model_dump(mode="json", exclude_none=True)
        return web.json_response({**shown, "status": status.status() if status else "pending"})

    async def attempts(self, request: web.Request) -> web.Response:
        return await attempts_page(self.store, request)


async def attempts_page(store: Store, request: web.Request) -> web.Response:
    """`.../{event_id}/attempts`: any event's attempts (its own or a received one's), oldest first."""
    refuse_unknown_params(request, PAGE_PARAMS)
    limit = query_limit(request)
    try:
        after = decode_cursor(cursor) if (cursor := request.query.get("cursor")) else None
    except CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), field="cursor") from None
    event_id = request.match_info["event_id"]
    docs = await attempt_log.page_of_event(store, request[TENANT]["_id"], event_id, limit + 1, after)
    next_cursor = encode_cursor(docs[limit - 1]["at"], docs[limit - 1]["id"]) if len(docs) > limit else None
    return web.json_response({"data": [render_attempt(doc) for doc in docs[:limit]], "next_cursor": next_cursor})


def render_attempt(doc: dict) -> dict:
    return {
        "id": doc["id"],
        "message_id": doc["message_id"],
        "event_id": doc["event_id"],
        "endpoint_id": doc["endpoint_id"],
        "attempt": doc["attempt"],
        "at": doc["at"].isoformat(),
        "url": doc["url"],
        "outcome": doc["outcome"],
        "reason": doc["reason"],
        "status": doc["status"],
        "latency_ms": doc["latency_ms"],
        "request_headers": doc["request_headers"],
        "response_body": doc["response_body"],
        # Set when the record could not be stored whole (buckets.stub): why.
        "unstorable": doc.get("unstorable"),
    }
