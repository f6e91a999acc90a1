"""Which event types an endpoint subscribes to (seed 001's filters).

- `*` alone matches every type;
- a `*` segment in the middle matches exactly one segment (`order.*.failed`
  matches `order.payment.failed`, not `order.failed`);
- a trailing `*` matches one or more segments (`user.*` matches
  `user.created` and `user.profile.updated`, not `user`);
- anything else matches exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    wanted = pattern.split(".")
    actual = event_type.split(".")
    if wanted[-1] == "*":
        head = wanted[:-1]
        return len(actual) > len(head) and _segments_match(head, actual[: len(head)])
    return len(wanted) == len(actual) and _segments_match(wanted, actual)


def _segments_match(wanted: list[str], actual: list[str]) -> bool:
    return all(w == "*" or w == a for w, a in zip(wanted, actual, strict=True))


def any_matches(patterns: Iterable[str], event_type: str) -> bool:
    return any(matches(pattern, event_type) for pattern in patterns)


def as_query(pattern: str) -> dict | str | None:
    """What a MongoDB filter on an event-type field holds for `pattern`: the type itself, an
    anchored regular expression, or None for `*` (every type). The regex starts with the
    pattern's literal head (`^order\\.`), so an index on the field is read over that range only."""
    if pattern == "*":
        return None
    if "*" not in pattern.split("."):
        return pattern
    wanted = pattern.split(".")
    parts = ["[^.]+" if w == "*" else re.escape(w) for w in wanted[:-1]]
    tail = ".+" if wanted[-1] == "*" else re.escape(wanted[-1])
    return {"$regex": "^" + r"\.".join([*parts, tail]) + "$"}
