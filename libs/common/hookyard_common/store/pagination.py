"""Cursor pagination over a (timestamp, id) ordering, newest first.

A cursor is opaque to clients: the last item's sort key, base64url-encoded.
Unlike skip/limit it stays correct and cheap while new items arrive.
"""

from __future__ import annotations

import base64
from datetime import datetime

import orjson

from hookyard_common.schemas import as_utc


class CursorError(ValueError):
    pass


def encode_cursor(at: datetime, item_id: str) -> str:
    raw = orjson.dumps([at.isoformat(), item_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: Longer than any cursor this module makes (a time and an id of at most 128 characters).
MAX_CURSOR_LENGTH = 512


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor holds; a CursorError for anything `encode_cursor` did not make,
    including well-formed forgeries a query could not use (no time zone, out of range, not text)."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("invalid cursor: too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = orjson.loads(raw)
        if not isinstance(at, str) or not isinstance(item_id, str) or len(item_id) > 128:
            raise ValueError("not a (time, id) pair")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return as_utc(moment), item_id
    except (ValueError, TypeError) as exc:
        raise CursorError("invalid cursor: use the next_cursor of a previous page") from exc


def after_cursor(field: str, cursor: str | None) -> dict:
    """The MongoDB filter for items that sort after `cursor` in (field desc, _id desc) order."""
    if not cursor:
        return {}
    return after_position(field, *decode_cursor(cursor))


def after_position(field: str, at: datetime, item_id: str) -> dict:
    """The MongoDB filter for items that sort after (at, item_id) in (field desc, _id desc) order."""
    return {"$or": [{field: {"$lt": at}}, {field: at, "_id": {"$lt": item_id}}]}
