"""Reading and parsing request bodies: bounded while reading, strict about encoding."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from .body_intake import INTAKE
from .errors import ApiError

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
ACCEPTED = ("application/json", FORM, MULTIPART, "text/plain")


def media_type(request: web.Request) -> str:
    return (request.content_type or "").lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def require_supported(media: str) -> None:
    if not (is_json(media) or media in ACCEPTED):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"unsupported Content-Type {media or '(none)'!r}",
            accepted=[*ACCEPTED, "application/*+json"],
        )


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes, and read only
    once the process's body budget has room for it (see `body_intake`)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    intake = request.config_dict.get(INTAKE)
    if intake is not None:
        await intake.reserve(request, limit if declared is None else declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:  # stop reading: a slow or huge sender costs us no more
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"body exceeds the limit of {limit} bytes", limit_bytes=limit)


def parse(body: bytes, media: str, content_type_header: str) -> tuple[Any, dict[str, list[str]] | None]:
    """(parsed JSON or None, form fields or None); 400 on malformed input."""
    if is_json(media):
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if media == FORM:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_form", "form body is not valid UTF-8") from None
        return None, parse_qs(text, keep_blank_values=True)
    if media == MULTIPART:
        return None, _multipart_fields(body, content_type_header)
    if media == "text/plain":
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_text", "text body is not valid UTF-8") from None
    return None, None


def _multipart_fields(body: bytes, content_type_header: str) -> dict[str, list[str]]:
    """Text fields of a multipart/form-data body (files are kept only in the raw body)."""
    head = f"Content-Type: {content_type_header}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise ApiError(400, "malformed_form", "multipart body could not be parsed")
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue
        try:
            value = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise ApiError(400, "malformed_form", f"form field {name!r} is not valid text") from None
        fields.setdefault(name, []).append(value)
    return fields


def payload_of(body: bytes, media: str, json_value: Any, form: dict[str, list[str]] | None) -> Any:
    """What an event's `payload` holds: the JSON, the form fields (single values unwrapped), or the text."""
    if is_json(media):
        return json_value
    if form is not None:
        return {key: values[0] if len(values) == 1 else values for key, values in form.items()}
    return body.decode("utf-8", errors="replace")
