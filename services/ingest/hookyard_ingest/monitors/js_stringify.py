"""The bytes JavaScript's `JSON.stringify` makes of a JSON body: what seed 004's senders sign.

Seed 004 signs `JSON.stringify(body)`, and its server checks the MAC over
the body *as it parsed it and wrote it again*, not over the bytes received:
`{"status": "up"}` sent with a space verifies with the MAC of
`{"status":"up"}`. To accept exactly what the seed accepted, a monitor with
`legacy_signature` takes the MAC of the raw body or of this rewriting. It
follows ECMAScript: no whitespace; keys in insertion order except
integer-like ones (`"0"`, `"42"`), which JavaScript puts first, ascending;
strings escaped as JSON.stringify does (Python's `ensure_ascii=False` escapes
alike); every number a double, written by Number::toString (`1.0` → `1`,
`1e21` → `1e+21`, `1e-7` → `1e-7`). Pure, no I/O.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hookyard_ingest.edge import json_input

#: The largest array index JavaScript orders first among an object's keys (2^32 - 2).
MAX_INDEX = 2**32 - 2


def of_body(body: bytes) -> bytes | None:
    """`JSON.stringify(JSON.parse(body))`, or None when the body is not JSON."""
    if not body.strip():
        return None
    try:
        value = json_input.loads(body)
    except json_input.JsonInputError:
        return None
    return stringify(value).encode()


def stringify(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return number(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    keys = sorted((k for k in value if _index(k)), key=int) + [k for k in value if not _index(k)]
    return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{stringify(value[k])}" for k in keys) + "}"


def _index(key: str) -> bool:
    """An integer-like key, as JavaScript orders them first: `0`, or digits without a leading zero."""
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= MAX_INDEX


def number(x: float) -> str:
    """ECMAScript's Number::toString(10) of a finite double: its shortest round-trip digits, placed."""
    if x == 0:
        return "0"  # -0 too
    sign = "-" if x < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(x))).as_tuple()[1:]
    digits = "".join(map(str, digits_tuple)).rstrip("0") or "0"
    k = len(digits)
    n = len(digits_tuple) + int(exponent)  # the value is 0.<digits> x 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text
