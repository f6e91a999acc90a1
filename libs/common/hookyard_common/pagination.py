"""Cursor pagination over a (timestamp, id) ordering, newest first.

A cursor is opaque to clients: the last item's sort key, base64url-encoded.
Unlike skip/limit it stays correct and cheap while new items arrive.
"""

from __future__ import annotations

import base64
from datetime import datetime

import orjson


class CursorError(ValueError):
    pass


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = orjson.dumps([at.isoformat(), item_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = orjson.loads(raw)
        return datetime.fromisoformat(at), str(item_id)
    except Exception as exc:
        raise CursorError("invalid cursor") from exc


def after_cursor(field: str, cursor: str | None) -> dict:
    """The MongoDB filter for items that sort after `cursor` in (field desc, _id desc) order."""
    if not cursor:
        return {}
    at, item_id = decode_cursor(cursor)
    return {"$or": [{field: {"$lt": at}}, {field: at, "_id": {"$lt": item_id}}]}
