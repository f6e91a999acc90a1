"""A source's optional payload schema: required fields, overall and per message type, and the
kind of value a field must hold wherever it appears.

Seed 000's tourism receiver is the shipped example (docs/examples/seed-000-schema.json):
`reservation_update` needs `reservation_id` and `status`, `promo` needs
`promo_id`, `valid_until` (a date) and `discount` (a number), `user_info`
needs `user_id`; `timestamp` is a date-time and `metadata` an object.
Fields are dotted paths into the JSON body (or form field names). Kinds are
a short fixed list rather than JSON Schema: what senders' documents state
(a number, a date), checked in one pass, with errors naming each field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_MISSING = object()

Kind = Literal["string", "number", "integer", "boolean", "object", "array", "date", "date-time"]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?")


def _parses(parse: Callable[[str], object], shape: re.Pattern, value: object) -> bool:
    if not isinstance(value, str) or not shape.fullmatch(value):
        return False
    try:
        parse(value)
    except ValueError:  # the right shape, but no such day (2023-02-30) or time (25:00)
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: Each kind's test. JSON's true is not a number here, though Python's bool is an int.
KINDS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer(),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "date": lambda v: _parses(date.fromisoformat, _DATE, v),
    "date-time": lambda v: _parses(datetime.fromisoformat, _DATE_TIME, v),
}


class PayloadSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: list[str] = Field(default_factory=list, description="Paths every message must have.")
    type_field: str = Field("type", description="Path of the field naming the message type.")
    types: dict[str, list[str]] = Field(
        default_factory=dict, description="Message type → the paths that type must have."
    )
    allow_unknown_types: bool = Field(True, description="Accept types not listed in `types`.")
    field_types: dict[str, Kind] = Field(
        default_factory=dict,
        max_length=200,
        description="Path → the kind of value it must hold when present (`date`: 2023-11-12; "
        "`date-time`: ISO 8601, e.g. 2023-11-12T15:30:45.123Z).",
    )

    def problems(self, payload: Any) -> dict | None:
        """None when the payload conforms, else the error details for a 400."""
        if not isinstance(payload, dict):
            return {"code": "invalid_payload", "message": "the body must be a JSON object or a form", "field": "(body)"}
        missing = [path for path in self.required if _lookup(payload, path) is _MISSING]
        message_type = _lookup(payload, self.type_field)
        if self.types:
            if message_type is _MISSING or not isinstance(message_type, str):
                if self.type_field not in missing:
                    missing.append(self.type_field)
            elif message_type in self.types:
                missing += [p for p in self.types[message_type] if _lookup(payload, p) is _MISSING and p not in missing]
            elif not self.allow_unknown_types:
                return {
                    "code": "unknown_message_type",
                    "message": f"unknown message type {message_type!r}",
                    "field": self.type_field,
                    "known_types": sorted(self.types),
                }
        if missing:
            return {
                "code": "missing_fields",
                "message": "missing required fields: " + ", ".join(missing),
                "field": missing[0],
                "missing": missing,
            }
        return self._wrong_kinds(payload)

    def _wrong_kinds(self, payload: dict) -> dict | None:
        wrong = [
            {"field": path, "expected": kind}
            for path, kind in self.field_types.items()
            if (value := _lookup(payload, path)) is not _MISSING and not KINDS[kind](value)
        ]
        if not wrong:
            return None
        return {
            "code": "invalid_field_types",
            "message": "fields of the wrong kind: " + ", ".join(f"{w['field']} (a {w['expected']})" for w in wrong),
            "field": wrong[0]["field"],
            "invalid": wrong,
        }


def _lookup(payload: Any, path: str) -> Any:
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            return _MISSING
        value = value[part]
    return value
