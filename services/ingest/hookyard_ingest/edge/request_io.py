"""Reading tenant-API requests and shaping list responses.

Every refusal names the offending field (`field`: a dotted path into the
body, or the query parameter's name), so a client can tell which of its
inputs to fix. Bodies are read by `json_input` before the model sees them:
what the model accepts can then always be stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.collection import AsyncCollection

from hookyard_common.schemas import as_utc
from hookyard_common.store.pagination import CursorError, after_cursor, encode_cursor
from hookyard_ingest.edge import json_input
from hookyard_ingest.edge.errors import ApiError

# Query parameters every list takes; `time_window` lists take `since` and `until` too.
PAGE_PARAMS = frozenset({"limit", "cursor"})
WINDOW_PARAMS = frozenset({"since", "until"})

#: The model a body is read as; the caller gets that model back, not a bare BaseModel.
ModelT = TypeVar("ModelT", bound=BaseModel)


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "body_too_large", "request body too large") from None
    try:
        value = json_input.loads(raw) if raw.strip() else {}
    except json_input.JsonInputError as exc:
        raise ApiError(400, exc.code, exc.message, field=exc.field, **exc.details) from None
    return validated(model, value)


def validated(model: type[ModelT], value: object) -> ModelT:
    """`value` as `model`, or a 400 listing every problem, the first one as `field`."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise invalid_request(exc) from None


def invalid_request(exc: ValidationError) -> ApiError:
    problems = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "problem": err["msg"].removeprefix("Value error, "),  # our validators' own messages
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0]
    return ApiError(
        400, "invalid_request", f"{first['field']}: {first['problem']}", field=first["field"], problems=problems
    )


def query_limit(request: web.Request, default: int = 50, maximum: int = 100) -> int:
    raw = request.query.get("limit", str(default))
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= maximum):
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}", field="limit")
    return int(raw)


def refuse_unknown_params(request: web.Request, known: frozenset[str]) -> None:
    """A misspelt filter (`limt`, `sinse`) would silently change what a list shows: refuse it."""
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"unknown query parameter {unknown[0]!r}",
            field=unknown[0],
            accepted=sorted(known),
        )


def page(docs: list[dict], limit: int, field: str, render) -> dict:
    """A page of `limit` items and the cursor of the next one, if any."""
    items = docs[:limit]
    next_cursor = encode_cursor(items[-1][field], items[-1]["_id"]) if len(docs) > limit else None
    return {"data": [render(doc) for doc in items], "next_cursor": next_cursor}


def time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "invalid_time", f"{name} must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z", field=name
        ) from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_time", f"{name} needs a time zone (e.g. a trailing Z)", field=name)
    try:
        return as_utc(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_time", f"{name}: {exc}", field=name) from None


async def list_page(
    request: web.Request,
    collection: AsyncCollection,
    query: dict,
    field: str,
    render: Callable[[dict], dict],
    *,
    projection: dict | None = None,
    time_window: bool = False,
    filters: frozenset[str] = frozenset(),
) -> web.Response:
    """A page of `collection`, newest first by `field`: `limit`, `cursor`, and with
    `time_window` the `since`/`until` query parameters too; `filters` names the other
    query parameters the route reads, and any parameter not named is refused."""
    refuse_unknown_params(request, PAGE_PARAMS | filters | (WINDOW_PARAMS if time_window else frozenset()))
    limit = query_limit(request)
    query = dict(query)
    if time_window:
        window = {}
        if (since := time_param(request, "since")) is not None:
            window["$gte"] = since
        if (until := time_param(request, "until")) is not None:
            window["$lt"] = until
        if window:
            query[field] = window
    try:
        cursor = after_cursor(field, request.query.get("cursor"))
    except CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), field="cursor") from None
    if cursor:
        query = {"$and": [query, cursor]}
    docs = await collection.find(query, projection).sort([(field, -1), ("_id", -1)]).limit(limit + 1).to_list()
    return web.json_response(page(docs, limit, field, render))
