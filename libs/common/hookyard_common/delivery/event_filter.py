"""Which event types an endpoint subscribes to (seed 001's filters).

- `*` alone matches every type;
- a `*` segment in the middle matches exactly one segment (`order.*.failed`
  matches `order.payment.failed`, not `order.failed`);
- a trailing `*` matches one or more segments (`user.*` matches
  `user.created` and `user.profile.updated`, not `user`);
- anything else matches exactly.
"""

from __future__ import annotations

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
