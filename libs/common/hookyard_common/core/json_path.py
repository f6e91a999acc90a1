"""Dotted paths into a JSON document: `group`, `entry.0.id`, list positions as numbers.

One spelling for every place a tenant names a field of a payload: a
monitor's payload mapping, a source's dedup field, an endpoint's payload
filter. A path is bounded (256 characters, `MAX_SEGMENTS` segments), so
reading one costs a handful of dictionary look-ups whatever the document.
Pure, no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

#: The most segments a path may have: deeper payloads are rare, and a bound keeps a look-up cheap.
MAX_SEGMENTS = 16


def _not_too_deep(path: str) -> str:
    if path.count(".") >= MAX_SEGMENTS:
        raise ValueError(f"a path has at most {MAX_SEGMENTS} segments")
    return path


FieldPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=r"^[^.]+(\.[^.]+)*$"),
    AfterValidator(_not_too_deep),
]

#: What `lookup` answers for a path the document does not have (a JSON null is a value).
MISSING: Any = object()
#: A list position: `0` or plain ASCII decimals (`isdigit` would take `²`, which `int` refuses).
_POSITION = re.compile(r"0|[1-9][0-9]*")


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, or `MISSING`."""
    node = document
    for segment in path.split("."):
        if isinstance(node, dict):
            node = node.get(segment, MISSING)
        elif isinstance(node, list) and _POSITION.fullmatch(segment) and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node
