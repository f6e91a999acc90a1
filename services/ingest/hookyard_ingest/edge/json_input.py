"""JSON a client sends that Hookyard will store: read strictly, refused whole at the edge.

A value that parses is not yet a value MongoDB and the broker accept: BSON
integers are 64-bit, documents nest at most 100 deep, keys may not hold a
NUL, strings must be UTF-8 (a `\\ud800` escape parses into a lone surrogate
no encoder takes), and `Infinity`/`NaN` are not JSON. Found at write time,
in a consumer, such a value is an accepted event that can never be stored;
so it is refused here, with the path of the offending field. Duplicate keys are refused too: which
one "wins" depends on the reader, and the tenant meant one of them.

The standard library's parser is used (not orjson) because it keeps integers
exact (orjson turns those past 64 bits into floats) and reports every key
pair, so duplicates can be seen.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Deepest nesting accepted in a stored JSON value (objects and arrays), well under
#: BSON's 100 so the documents that carry it (an event inside a task inside a record) still fit.
MAX_DEPTH = 64
#: The integers BSON stores exactly: signed 64-bit.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# Past 19 digits (and a sign) no integer is in range: refused without converting it.
_MAX_INT_CHARS = 20


class JsonInputError(ValueError):
    def __init__(self, code: str, message: str, field: str = "(body)", **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details


class _HugeInt(str):
    """An integer literal too long to be in range, kept as text for the error."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # the first key seen twice is the one named
            if key in seen:
                raise JsonInputError("duplicate_key", f"the key {key!r} appears more than once in one object", key)
            seen.add(key)
    return value


def _int(text: str) -> int | _HugeInt:
    return int(text) if len(text) <= _MAX_INT_CHARS else _HugeInt(text)


def _constant(name: str) -> Any:
    raise JsonInputError("malformed_json", f"{name} is not JSON")


def loads(raw: bytes | str) -> Any:
    """The JSON value of `raw`, checked by `check`; a JsonInputError naming the problem otherwise."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, object_pairs_hook=_pairs, parse_int=_int, parse_constant=_constant)
    except UnicodeDecodeError:
        raise JsonInputError("malformed_json", "body is not valid UTF-8") from None
    except RecursionError:
        raise _too_deep("(body)") from None
    except json.JSONDecodeError as exc:
        raise JsonInputError("malformed_json", f"body is not valid JSON: {exc}") from None
    check(value)
    return value


def check(value: Any) -> None:
    """Refuse what MongoDB and the broker cannot store: too deep, integers past 64 bits,
    non-finite numbers, strings that are not UTF-8."""
    if not isinstance(value, (dict, list)):
        _check_scalar(value, ())
        return
    # Paths are built for containers only: scalars are checked where they stand.
    stack: list[tuple[dict | list, tuple]] = [(value, ())]
    while stack:
        container, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise _too_deep(_dotted(path))
        for key, child in container.items() if isinstance(container, dict) else enumerate(container):
            if isinstance(key, str) and (not key.isascii() or "\x00" in key):
                _check_key(key, path + (key,))
            if isinstance(child, (dict, list)):
                stack.append((child, path + (key,)))
            elif child is not None:
                _check_scalar(child, path + (key,)) if not _plain(child) else None


def _plain(item: Any) -> bool:
    """The common case, checked without building a path: ASCII text, a small integer, a finite float."""
    kind = type(item)
    if kind is str:
        return item.isascii()
    if kind is int:
        return INT_MIN <= item <= INT_MAX
    if kind is float:
        return math.isfinite(item)
    return kind is bool


def _check_key(key: str, path: tuple) -> None:
    if "\x00" in key:
        # BSON writes keys as C strings: a NUL cannot be stored in one.
        raise JsonInputError("invalid_key", "object keys may not contain NUL (\\u0000)", _dotted(path))
    _check_scalar(key, path)


def _check_scalar(item: Any, path: tuple) -> None:
    if isinstance(item, _HugeInt) or (type(item) is int and not INT_MIN <= item <= INT_MAX):
        raise _out_of_range(path)
    if type(item) is float and not math.isfinite(item):
        raise JsonInputError("number_out_of_range", "numbers must be finite", _dotted(path))
    if isinstance(item, str):
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError(
                "invalid_text", "strings must be valid Unicode (a lone surrogate escape is not)", _dotted(path)
            ) from None


def _dotted(path: tuple) -> str:
    # A key may itself be the bad text: shown escaped, so the error can be encoded.
    dotted = ".".join(str(part) for part in path).encode("utf-8", "backslashreplace").decode()
    return dotted or "(body)"


def _too_deep(field: str) -> JsonInputError:
    return JsonInputError(
        "too_deep", f"JSON may nest at most {MAX_DEPTH} objects or arrays deep", field, max_depth=MAX_DEPTH
    )


def _out_of_range(path: tuple) -> JsonInputError:
    return JsonInputError(
        "number_out_of_range",
        "integers must be within the signed 64-bit range",
        _dotted(path),
        minimum=INT_MIN,
        maximum=INT_MAX,
    )
