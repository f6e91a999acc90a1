"""Which events an endpoint takes by their content: a few conditions on payload fields.

Next to the event-type filter (event_filter.py), an endpoint may ask for a
field of the payload, as seed 002's hub routes WhatsApp messages by their
`group`: `{"path": "group", "equals": "sales"}`, or a list of such conditions,
all of which must hold. Each condition tests one field (a dotted path,
core/json_path.py) with exactly one of:

- `equals`: a JSON scalar (string, number, boolean or null), compared by
  type and value (`1` is not `"1"`, `true` is not `1`);
- `in`: a list of such scalars, any of which may match;
- `exists`: true when the field must be there, false when it must not.

Small on purpose: at most `MAX_CONDITIONS` conditions of at most
`MAX_CHOICES` scalars, paths of at most 16 segments and no nested values,
so evaluating a filter is a bounded handful of look-ups per event whatever a
tenant stores. The payload is the event's own, or for a provider's webhook its
body (JSON, or form fields); a body that is neither has no fields. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_serializer, model_validator

from hookyard_common.core.json_path import MISSING, FieldPath, lookup
from hookyard_common.schemas import Event

MAX_CONDITIONS = 10
MAX_CHOICES = 100
#: The tests a condition may make, exactly one each.
OPERATORS = ("equals", "in", "exists")

Scalar = Annotated[str, StringConstraints(max_length=1_024)] | int | float | bool | None


class Condition(BaseModel):
    """One field of the payload, tested one way."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: FieldPath
    equals: Scalar = None
    # `in` is a Python keyword: the field has another name, the JSON keeps the short one.
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1, max_length=MAX_CHOICES)
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [name for name in OPERATORS if self._given(name)]
        if len(given) != 1:
            raise ValueError(f"a condition needs exactly one of {', '.join(OPERATORS)} (got {len(given)})")
        return self

    def _given(self, operator: str) -> bool:
        return ("in_" if operator == "in" else operator) in self.model_fields_set

    @model_serializer
    def _as_written(self) -> dict[str, Any]:
        operator = next(name for name in OPERATORS if self._given(name))
        value = self.in_ if operator == "in" else getattr(self, operator)
        return {"path": self.path, operator: value}

    def holds(self, payload: Any) -> bool:
        found = lookup(payload, self.path)
        if self._given("exists"):
            return (found is not MISSING) == self.exists
        choices = self.in_ if self._given("in") else [self.equals]
        return found is not MISSING and any(_same(found, choice) for choice in choices or ())


def _one_or_many(value: object) -> object:
    """A single condition may be written without its list."""
    return [value] if isinstance(value, dict) else value


PayloadFilter = Annotated[
    list[Condition], BeforeValidator(_one_or_many), Field(min_length=1, max_length=MAX_CONDITIONS)
]


def _same(found: Any, wanted: Any) -> bool:
    """JSON equality of scalars: booleans are not numbers, objects and lists never match."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return found is wanted
    if isinstance(found, int | float) and isinstance(wanted, int | float):
        return found == wanted
    return type(found) is type(wanted) and found == wanted


def holds(conditions: Sequence[Condition], payload: Any) -> bool:
    return all(condition.holds(payload) for condition in conditions)


def payload_of(event: Event) -> Any:
    """The fields a filter reads: the event's payload, or a provider's JSON or form body; else None."""
    if event.inbound is None:
        return event.payload
    media = event.inbound.media_type
    try:
        if media == "application/json" or media.endswith("+json"):
            return orjson.loads(event.inbound.raw_body)
        if media == "application/x-www-form-urlencoded":
            fields = parse_qs(event.inbound.raw_body.decode(), keep_blank_values=True)
            return {key: values[0] if len(values) == 1 else values for key, values in fields.items()}
    except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None  # the ingest parsed it before accepting it; one published straight to the broker may not
    return None
