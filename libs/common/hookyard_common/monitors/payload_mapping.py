"""Payload mapping: a provider's own JSON turned into a monitor status.

A status page or a CI system posts its own format; a monitor with a mapping
reads one field of it (a dotted path, list positions as numbers:
`component.status`, `builds.0.result`) and looks its value up in a table
(`"major_outage": "down"`). Matching ignores case and Unicode normalization
(a canonical caseless match: `ÉCHEC`, `échec` and `e\u0301chec` are one key),
and numbers, booleans and null match their JSON spelling (`true`, `0`,
`null`), a number its shortest one, so `2.0` matches `2`. A value missing
from the table gives `default_status`, or no status at all: the ping still
proves the sender is alive, but the monitor keeps its state.

A list position is `0` or a plain decimal without a sign or leading zeros;
anything else, or a position past the end, is a field that is not there.
What a check keeps is bounded: the value found, to the length a table key
may have; the message, to a ping message's 1,000 characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from hookyard_common.core.json_path import MISSING, FieldPath, lookup

PushedStatus = Literal["up", "down", "degraded"]
#: The longest table key, and so the longest value a check keeps (a longer one can match no key).
MAX_VALUE = 256
#: The longest message a check keeps, as for a ping's own `msg`.
MAX_MESSAGE = 1_000
#: Past this a float is not an exact integer, and keeps its own spelling.
_EXACT_INTEGERS = 2**53


def fold(text: str) -> str:
    """Unicode's canonical caseless form (NFD, case fold, then composed again to stay readable)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


class PayloadMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status_field: FieldPath
    values: dict[Annotated[str, StringConstraints(max_length=MAX_VALUE)], PushedStatus] = Field(
        min_length=1, max_length=100
    )
    default_status: PushedStatus | None = None
    # Optional: where the provider says why (kept as the check's and the alert's message).
    message_field: FieldPath | None = None

    @field_validator("values")
    @classmethod
    def _case_insensitive(cls, values: dict[str, str]) -> dict[str, str]:
        folded: dict[str, str] = {}
        for key, status in values.items():
            if folded.setdefault(fold(key), status) != status:
                raise ValueError(f"{key!r} appears twice (matching ignores case) with different statuses")
        return folded


@dataclass(frozen=True)
class Mapped:
    status: PushedStatus | None
    # The value found at `status_field` (None when the field is absent), for the check record: at most MAX_VALUE.
    value: str | None
    message: str | None
    matched: bool


def _spelling(value: Any) -> str | None:
    """How a scalar is matched against the table; None for objects and lists."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return str(int(value))
    if value is None or isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return None


def apply(mapping: PayloadMapping, document: Any) -> Mapped:
    found = lookup(document, mapping.status_field)
    value = None if found is MISSING else _spelling(found)
    status = mapping.values.get(fold(value)) if value is not None else None
    kept = value[:MAX_VALUE] if value is not None else None
    message = None
    if mapping.message_field is not None:
        raw = lookup(document, mapping.message_field)
        if raw is not MISSING and raw is not None:
            message = (raw if isinstance(raw, str) else orjson.dumps(raw).decode())[:MAX_MESSAGE]
    if status is not None:
        return Mapped(status, kept, message, matched=True)
    return Mapped(mapping.default_status, kept, message, matched=False)
