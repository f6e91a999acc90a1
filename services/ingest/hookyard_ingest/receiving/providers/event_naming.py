"""How a verified delivery is named: its event type and its dedup key.

Providers name their events in many styles ('orders/create', 'pull_request' + 'opened');
every one is turned into the dotted type the routing keys use. A provider's own delivery id
becomes the dedup key as it is, only bounded in length.
"""

from __future__ import annotations

import hashlib
import re

from hookyard_common.core.memo import memo_short
from hookyard_common.schemas import EVENT_TYPE_MAX_LENGTH

DEDUP_KEY_MAX = 256
_SEPARATORS = re.compile(r"[\s/:\\.]+")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_\-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def normalize_event_type(raw: str | None, fallback: str) -> str:
    """Turn a provider's type into a valid dotted type, or return `fallback`.

    '/', ':', '\\', '.' and whitespace separate segments ('orders/create' -> 'orders.create');
    any other run of characters outside [A-Za-z0-9_-] becomes '_' inside its segment. Empty
    segments and segments without a letter or digit are dropped; the result is cut to
    `EVENT_TYPE_MAX_LENGTH` (200) characters.
    """
    if not isinstance(raw, str):  # a JSON body's `type` may be anything
        return fallback
    return _dotted(raw) or fallback


@memo_short(maxsize=512, longest=EVENT_TYPE_MAX_LENGTH)  # a source sends few types, one on every request
def _dotted(raw: str) -> str:
    segments = []
    for part in _SEPARATORS.split(raw):
        segment = _INVALID_RUN.sub("_", part)
        if _ALNUM.search(segment):
            segments.append(segment)
    return ".".join(segments)[:EVENT_TYPE_MAX_LENGTH].rstrip(".")


def dedup_key(key: str | None) -> str | None:
    """Keep a provider's id as it is, but bound its length (a hash of it keeps it unique)."""
    if not key:
        return None
    if len(key) > DEDUP_KEY_MAX:
        return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key
