"""Malformed requests, as a careless or hostile client sends them, get a 4xx naming the problem.

Each request here answered 500 (or 503, or 202 for an event no consumer
could ever store) before the edge validated it: nulls in a PATCH, a
non-ASCII digit as `limit`, forged cursors, numbers past 64 bits, nesting
deeper than BSON allows, header bytes that are not text, unusual framing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import logging
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
from aiohttp import web
from pymongo import AsyncMongoClient

from hookyard_common.schemas import utcnow
from hookyard_common.store.pagination import CursorError, decode_cursor, encode_cursor
from hookyard_ingest.edge import bodies, json_input
from hookyard_ingest.edge.errors import ApiError, json_errors

# ---- pure: the strict JSON reader, cursors, multipart ----


@pytest.mark.parametrize(
    "raw, code, field",
    [
        (b'{"a": 1, "a": 2}', "duplicate_key", "a"),
        (b'{"a": {"b": [1, 123456789012345678901234567890]}}', "number_out_of_range", "a.b.1"),
        (b'{"n": 9223372036854775808}', "number_out_of_range", "n"),
        (b'{"n": -9223372036854775809}', "number_out_of_range", "n"),
        (b'{"n": 1e400}', "number_out_of_range", "n"),
        (b'{"n": NaN}', "malformed_json", "(body)"),
        (b'{"s": "\\ud800"}', "invalid_text", "s"),
        (b'{"s": ["ok", "\\udc00 tail"]}', "invalid_text", "s.1"),
        (b'{"\\ud800": 1}', "invalid_text", "\\ud800"),
        (b'{"a": {"k\\u0000": 1}}', "invalid_key", "a.k\x00"),
        (b"[" * 65 + b"]" * 65, "too_deep", ".".join(["0"] * 64)),
        (b'{"a": ' * 200_000 + b"1" + b"}" * 200_000, "too_deep", "(body)"),
        (b"\xff\xfe{}", "malformed_json", "(body)"),
        (b"\xef\xbb\xbf{}", "malformed_json", "(body)"),
        (b'{"a": 1} trailing', "malformed_json", "(body)"),
    ],
)
def test_strict_json_refuses_what_cannot_be_stored(raw, code, field):
    with pytest.raises(json_input.JsonInputError) as caught:
        json_input.loads(raw)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_strict_json_keeps_what_can_be_stored():
    raw = b'{"max": 9223372036854775807, "min": -9223372036854775808, "emoji": "\\ud83d\\ude00", "deep": '
    value = json_input.loads(raw + b"[" * 63 + b"]" * 63 + b', "f": 1.5, "t": true, "z": null}')
    assert value["max"] == 2**63 - 1 and value["min"] == -(2**63) and value["emoji"] == "\U0001f600"
    assert value["f"] == 1.5 and value["t"] is True and value["z"] is None


def _cursor(parts) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(["9999-12-31T23:59:59-23:59", "x"]),  # after year 9999 in UTC
        _cursor(["0001-01-01T00:00:00+14:00", "x"]),  # before year 1 in UTC
        _cursor(["2026-01-01T00:00:00", "x"]),  # no time zone
        _cursor(["2026-01-01T00:00:00Z", 7]),
        _cursor(["2026-01-01T00:00:00Z", "x" * 200]),
        _cursor([1, "x"]),
        _cursor(["a", "b", "c"]),
        _cursor({"at": "2026-01-01T00:00:00Z"}),
        "not base64 !!",
        "A" * 5000,
    ],
)
def test_forged_cursors_are_refused(cursor):
    with pytest.raises(CursorError):
        decode_cursor(cursor)


def test_cursors_made_here_decode():
    now = utcnow()
    assert decode_cursor(encode_cursor(now, "src_1")) == (now, "src_1")


def _multipart(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_fields_are_parsed_and_files_skipped():
    body = _multipart(
        "XyZ",
        [
            ("token", None, b"abc"),
            ("note", None, "é".encode()),
            ("attachment-1", "a.bin", b"\x00\xff"),
            ("token", None, b"def"),
        ],
    )
    _, fields = bodies.parse(body, bodies.MULTIPART, "multipart/form-data; boundary=XyZ")
    assert fields == {"token": ["abc", "def"], "note": ["é"]}


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated", "multipart/form-data; boundary=XyZ"),
        (b"no boundary anywhere", "multipart/form-data; boundary=XyZ"),
        (b"--XyZ--\r\n", "multipart/form-data"),
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xff\r\n--XyZ--\r\n",
            "multipart/form-data; boundary=XyZ",
        ),
        (
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
            b"Content-Type: text/plain; charset=rot13\r\n\r\nx\r\n--XyZ--\r\n",
            "multipart/form-data; boundary=XyZ",
        ),
    ],
)
def test_malformed_multipart_is_a_400(body, content_type):
    with pytest.raises(ApiError) as caught:
        bodies.parse(body, bodies.MULTIPART, content_type)
    assert caught.value.status == 400 and caught.value.code == "malformed_form" and caught.value.details["field"]


# ---- over HTTP, against the real ingest, broker and database ----


def _error(status: int, body) -> tuple[int, str, str | None]:
    assert isinstance(body, dict) and "error" in body, body
    return status, body["error"]["code"], body["error"].get("field")


async def _endpoint(ingest, key: str) -> dict:
    status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": "https://example.com/hook"})
    assert status == 201, body
    return body


async def _post_raw(ingest, path: str, key: str, raw: bytes):
    return await ingest.call("POST", path, token=key, data=raw, headers={"Content-Type": "application/json"})


async def test_null_for_a_field_that_always_has_a_value_is_a_400(ingest):
    key = await ingest.tenant()
    ep = await _endpoint(ingest, key)
    for field in (
        "url",
        "event_types",
        "source_ids",
        "headers",
        "timeout_seconds",
        "retry_policy",
        "max_in_flight",
        "active",
        "signature_format",
        "payload_format",
    ):
        status, body, _ = await ingest.call("PATCH", f"/v1/endpoints/{ep['id']}", token=key, json={field: None})
        assert _error(status, body) == (400, "invalid_request", field)
    # Where null means "clear it", it still does.
    status, body, _ = await ingest.call(
        "PATCH",
        f"/v1/endpoints/{ep['id']}",
        token=key,
        json={"description": None, "auth": None, "rate_limit_per_second": None},
    )
    assert status == 200 and body["description"] is None
    source = await ingest.source(key, "hmac")
    for field in ("name", "secrets"):
        status, body, _ = await ingest.call("PATCH", f"/v1/sources/{source['id']}", token=key, json={field: None})
        assert _error(status, body) == (400, "invalid_request", field)


async def test_list_parameters_are_validated(ingest):
    key = await ingest.tenant()
    forged = _cursor(["9999-12-31T23:59:59-23:59", "x"])
    for path in ("/v1/sources", "/v1/endpoints", "/v1/messages", "/v1/monitors", "/v1/dead-letters"):
        for params, expected in (
            ({"limit": "²"}, (400, "invalid_limit", "limit")),
            ({"limit": "٣"}, (400, "invalid_limit", "limit")),
            ({"cursor": forged}, (400, "invalid_cursor", "cursor")),
            ({"limt": "5"}, (400, "unknown_parameter", "limt")),
        ):
            status, body, _ = await ingest.call("GET", path, token=key, params=params)
            assert _error(status, body) == expected, (path, params)
    status, body, _ = await ingest.call("GET", "/v1/messages", token=key, params={"since": "0001-01-01T00:00:00+14:00"})
    assert _error(status, body) == (400, "invalid_time", "since")


async def test_numbers_past_64_bits_and_deep_nesting_are_refused_before_publish(ingest, amqp_url):
    key = await ingest.tenant()
    source = b'{"name": "s", "provider": "none", "rate_limit_per_ip": '
    for raw, expected in (
        (source + b"12345678901234567890123456789012}", (400, "number_out_of_range", "rate_limit_per_ip")),
        (source + b"9223372036854775807}", (400, "invalid_request", "rate_limit_per_ip")),
    ):
        assert _error(*(await _post_raw(ingest, "/v1/sources", key, raw))[:2]) == expected, raw
    for fields, expected in (
        (b'"payload": {"n": 123456789012345678901234567890}', (400, "number_out_of_range", "payload.n")),
        (b'"payload": 1, "context": {"n": 18446744073709551615}', (400, "number_out_of_range", "context.n")),
        (b'"payload": ' + b"[" * 100 + b"]" * 100, (400, "too_deep", "payload" + ".0" * 63)),
        (b'"payload": {"s": "\\ud800"}', (400, "invalid_text", "payload.s")),
        (b'"payload": 1, "payload": 2', (400, "duplicate_key", "payload")),
        (b'"payload": 1, "occurred_at": "0001-01-01T00:00:00+01:00"', (400, "invalid_request", "occurred_at")),
        (b'"payload": 1, "headers": {"Bad Name": "x"}', (400, "invalid_request", "headers")),
        (b'"payload": 1, "headers": {"X-A": "one\\r\\nX-B: two"}', (400, "invalid_request", "headers")),
    ):
        raw = b'{"event_type": "a.b", ' + fields + b"}"
        assert _error(*(await _post_raw(ingest, "/v1/events", key, raw))[:2]) == expected, raw[:80]

    from helpers import drain_queue

    assert await drain_queue(amqp_url, ingest.dispatch_queues(), expect=0, timeout=1.0) == []


async def test_header_bytes_that_are_not_text_are_a_400(ingest):
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    port = ingest.settings.ingest_port
    for head in (b"X-Odd: \xff\xfe", b"Content-Type: application/json; charset=\xff", b"User-Agent: caf\xe9"):
        content_type = b"" if head.startswith(b"Content-Type") else b"Content-Type: application/json\r\n"
        raw = (
            f"POST /in/{source['id']} HTTP/1.1\r\nHost: x\r\n".encode()
            + content_type
            + head
            + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        status, body = await _raw_answer(port, raw)
        assert status == 400 and orjson.loads(body)["error"]["code"] == "malformed_header", (head, status, body)
    raw = (
        b"GET /v1/sources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff"
        + key.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    status, body = await _raw_answer(port, raw)
    assert (status, orjson.loads(body)["error"]["field"]) == (400, "Authorization")


async def _raw_answer(port: int, request: bytes) -> tuple[int, bytes]:
    """(status, body) of `request` sent byte for byte on a fresh connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_unusual_framing_on_in_is_a_4xx(ingest, caplog):
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    line = (
        f"POST /in/{source['id']} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    ).encode()
    gzipped = gzip.compress(b"{}")
    cases = {
        "chunked and content-length": line
        + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "bad chunk size": line + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "negative chunk size": line + b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n",
        "two content-lengths": line + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "gzip that is not gzip": line + b"Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        "bytes in the path": (
            b"POST /in/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        ),
        "space in a header name": line + b"Bad Name: x\r\nContent-Length: 2\r\n\r\n{}",
    }
    for name, raw in cases.items():
        status, body = await _raw_answer(ingest.settings.ingest_port, raw)
        assert 400 <= status < 500, name
        error = orjson.loads(body)["error"]  # a JSON error, even from the HTTP parser
        assert error["code"] in ("malformed_request", "malformed_body") and error["field"], (name, error)
    # A sender's garbage is answered, not logged as an error of ours (it would fill the logs).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    # Framing that is unusual but valid is accepted, as any client's.
    for raw in (
        line + b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;ext=1\r\n}\r\n0\r\nTrailer: x\r\n\r\n",
        line + b"Content-Encoding: gzip\r\nContent-Length: " + str(len(gzipped)).encode() + b"\r\n\r\n" + gzipped,
    ):
        status, body = await _raw_answer(ingest.settings.ingest_port, raw)
        assert status == 200 and orjson.loads(body)["status"] == "accepted", body


@contextlib.asynccontextmanager
async def _serving(handler) -> AsyncIterator[int]:
    """`handler` behind the ingest's error middleware on a free port; yields the port."""
    app = web.Application(middlewares=[json_errors])
    app.router.add_route("*", "/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


async def test_a_database_outage_is_a_503_not_a_4xx():
    """A route whose database does not answer (a real client, pointed at a closed port)."""
    client = AsyncMongoClient("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200")

    async def handler(request: web.Request) -> web.Response:
        await client["db"]["c"].find_one({})
        return web.json_response({})

    async with _serving(handler) as port:
        status, body = await _raw_answer(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await client.close()
    assert status == 503 and orjson.loads(body)["error"]["code"] == "unavailable"


async def test_a_broker_that_cannot_take_a_publish_is_a_503(amqp_url):
    """A publish on a channel the real broker closed: the client is told to retry, not that it erred."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.close()

    async def handler(request: web.Request) -> web.Response:
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key="nowhere")
        return web.json_response({})

    async with _serving(handler) as port:
        status, body = await _raw_answer(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await connection.close()
    assert status == 503 and orjson.loads(body)["error"]["code"] == "unavailable", body


async def test_a_client_that_hangs_up_mid_body_is_no_internal_error(caplog):
    read: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        try:
            await request.read()
        except BaseException as exc:
            read.append(type(exc).__name__)
            raise
        return web.json_response({})

    async with _serving(handler) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"half":')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()  # a reset, not a clean close
        for _ in range(50):
            if read:
                break
            await asyncio.sleep(0.05)
    assert read, "the handler never saw the hang-up"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_ping_metadata_that_could_not_be_stored_is_a_400(ingest):
    key = await ingest.tenant()
    status, monitor, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "m"})
    assert status == 201
    path = f"/ping/{monitor['token']}"
    for raw, expected in (
        (b'{"status": "down", "metadata": {"n": 18446744073709551615}}', (400, "number_out_of_range", "metadata.n")),
        (
            b'{"status": "down", "metadata": ' + b'{"k": ' * 80 + b"1" + b"}" * 81,
            (400, "too_deep", "metadata" + ".k" * 63),
        ),
        (b'{"status": "down", "message": "\\ud800"}', (400, "invalid_text", "message")),
        (b'{"status": "sideways"}', (400, "invalid_status", "status")),
    ):
        status, body, _ = await ingest.call("POST", path, data=raw, headers={"Content-Type": "application/json"})
        assert _error(status, body) == expected, raw[:60]
    status, shown, _ = await ingest.call("GET", f"/v1/monitors/{monitor['id']}", token=key)
    assert shown["state"] == "new" and shown["pings_received"] == 0
