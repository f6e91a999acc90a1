"""Reading tenant-API requests and shaping list responses."""

from __future__ import annotations

from aiohttp import web
from hookyard_common.pagination import encode_cursor
from pydantic import BaseModel, ValidationError

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
