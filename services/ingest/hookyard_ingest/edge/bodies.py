"""Reading and parsing request bodies: bounded while reading, strict about encoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import multipart
import orjson
from aiohttp import web

from hookyard_ingest.edge.body_intake import INTAKE
from hookyard_ingest.edge.errors import ApiError

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
ACCEPTED = ("application/json", FORM, MULTIPART, "text/plain")
#: Most fields a form, or parts a multipart body, may have (Mailgun's inbound email sends a few dozen).
MAX_PARTS = 1_000


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
            raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}", field="(body)") from None
    if media == FORM:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_form", "form body is not valid UTF-8", field="(body)") from None
        try:
            # The field count is checked before any parsing: a body of a million empty
            # fields costs a count of its separators, not a million list appends.
            return None, parse_qs(text, keep_blank_values=True, max_num_fields=MAX_PARTS)
        except ValueError:
            raise ApiError(
                400, "malformed_form", f"form body has more than {MAX_PARTS} fields", field="(body)"
            ) from None
    if media == MULTIPART:
        return None, _multipart_fields(body, content_type_header)
    if media == "text/plain":
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_text", "text body is not valid UTF-8", field="(body)") from None
    return None, None


def _multipart_fields(body: bytes, content_type_header: str) -> dict[str, list[str]]:
    """Text fields of a multipart/form-data body (files are kept only in the raw body).

    Parsed by `multipart`'s push parser, in strict mode: the body is already in
    memory and bounded, so nothing is spooled, and a malformed body is a 400."""
    boundary = multipart.parse_options_header(content_type_header)[1].get("boundary")
    if not boundary:
        raise ApiError(400, "malformed_form", "multipart Content-Type has no boundary", field="Content-Type")
    fields: dict[str, list[str]] = {}
    try:
        parser = multipart.PushMultipartParser(boundary, len(body), max_segment_count=MAX_PARTS, strict=True)
        with parser:
            for segment, value in _segments(parser, body):
                if segment.name and segment.filename is None:
                    fields.setdefault(segment.name, []).append(_text(segment, value))
    except multipart.MultipartError as exc:
        message = f"multipart body could not be parsed: {exc}"
        raise ApiError(400, "malformed_form", message, field="(body)") from None
    return fields


def _segments(parser: multipart.PushMultipartParser, body: bytes) -> Iterator[tuple[multipart.MultipartSegment, bytes]]:
    """(segment, its bytes) for every part of `body`."""
    segment: multipart.MultipartSegment | None = None
    chunks: list[bytes] = []
    for event in [*parser.parse(body), *parser.parse(b"")]:
        if isinstance(event, multipart.MultipartSegment):
            segment, chunks = event, []
        elif event is None:
            yield segment, b"".join(chunks)
        else:
            chunks.append(event)


def _text(segment: multipart.MultipartSegment, value: bytes) -> str:
    try:
        return value.decode(segment.charset or "utf-8")
    except (UnicodeError, LookupError):  # not text in that charset, or not a text charset at all
        message = f"form field {segment.name!r} is not valid text"
        raise ApiError(400, "malformed_form", message, field=segment.name) from None


def payload_of(body: bytes, media: str, json_value: Any, form: dict[str, list[str]] | None) -> Any:
    """What an event's `payload` holds: the JSON, the form fields (single values unwrapped), or the text."""
    if is_json(media):
        return json_value
    if form is not None:
        return {key: values[0] if len(values) == 1 else values for key, values in form.items()}
    return body.decode("utf-8", errors="replace")
