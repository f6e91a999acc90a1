"""Reading tenant-API requests and shaping list responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from hookyard_common.pagination import CursorError, after_cursor, encode_cursor
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.collection import AsyncCollection

from .errors import ApiError


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "body_too_large", "request body too large") from None
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise ApiError(400, "invalid_request", "the request body is invalid", problems=problems) from None


def query_limit(request: web.Request, default: int = 50, maximum: int = 100) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}")
    return int(raw)


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
        raise ApiError(400, "invalid_time", f"{name} must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z") from None
    if value.tzinfo is None:
        raise ApiError(400, "invalid_time", f"{name} needs a time zone (e.g. a trailing Z)")
    return value


async def list_page(
    request: web.Request,
    collection: AsyncCollection,
    query: dict,
    field: str,
    render: Callable[[dict], dict],
    *,
    projection: dict | None = None,
    time_window: bool = False,
) -> web.Response:
    """A page of `collection`, newest first by `field`: `limit`, `cursor`, and with
    `time_window` the `since`/`until` query parameters too."""
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
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    if cursor:
        query = {"$and": [query, cursor]}
    docs = await collection.find(query, projection).sort([(field, -1), ("_id", -1)]).limit(limit + 1).to_list()
    return web.json_response(page(docs, limit, field, render))
