"""A source's optional payload schema: required fields, overall and per message type.

Seed 000's tourism receiver is the shipped example (docs/ingest.md):
`reservation_update` needs `reservation_id` and `status`, `promo` needs
`promo_id`, `valid_until` and `discount`, `user_info` needs `user_id`.
Fields are dotted paths into the JSON body (or form field names).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_MISSING = object()


class PayloadSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: list[str] = Field(default_factory=list, description="Paths every message must have.")
    type_field: str = Field("type", description="Path of the field naming the message type.")
    types: dict[str, list[str]] = Field(
        default_factory=dict, description="Message type → the paths that type must have."
    )
    allow_unknown_types: bool = Field(True, description="Accept types not listed in `types`.")

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
        return None


def _lookup(payload: Any, path: str) -> Any:
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            return _MISSING
        value = value[part]
    return value
