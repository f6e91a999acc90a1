"""Slow and greedy clients: slowloris heads and bodies are cut off, concurrent big uploads keep
memory bounded, /metrics is not published under ROOT_PATH. Raw sockets against a real ingest."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time

import aiohttp
import pytest

from helpers import IngestClient, drain_queue, gunicorn_ingest, start_service

READ_TIMEOUT = 2.0


async def trickle(port: int, whole: bytes, slow: bytes, *, every: float = 1.0, give_up: float = 20.0):
    """Send `whole` at once, then `slow` one byte every `every` s until the server answers.
    (everything the server answered before hanging up, seconds from the first slow byte to the answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()

    async def read_all() -> None:
        # Chunk by chunk: the reset that answers a byte sent after the server closed must
        # not take away what it said before.
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    reading = asyncio.ensure_future(read_all())
    writer.write(whole)
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        for byte in slow:
            if received or reading.done() or time.monotonic() - started > give_up:
                break
            writer.write(bytes([byte]))
            await asyncio.wait([reading], timeout=every)
    answered = time.monotonic() - started
    await asyncio.wait_for(reading, give_up)
    writer.close()
    return bytes(received), answered


def error_of(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def request_head(path: str, *, length: int, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    ).encode()


def port_of(client: IngestClient) -> int:
    return int(client.base.rsplit(":", 1)[1])


async def test_a_slow_head_is_cut_off_while_others_are_served(start_ingest):
    ingest = await start_ingest(http_read_timeout_seconds=READ_TIMEOUT)
    port = port_of(ingest)
    slow = asyncio.create_task(trickle(port, b"", b"POST /in/src_x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 60))
    # An idle connection is not a slow head: its deadline starts with its first byte.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.5)
    status, body, _ = await ingest.call("GET", "/healthz")
    assert status == 200 and not slow.done()  # served while the slowloris is under way

    raw, seconds = await slow
    status, error = error_of(raw)
    assert status == 408 and error["code"] == "request_timeout" and error["timeout_seconds"] == READ_TIMEOUT
    assert READ_TIMEOUT - 0.5 <= seconds < READ_TIMEOUT + 8  # cut at the deadline, not at the 60 s give-up

    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer


async def test_a_slow_body_is_answered_408_on_the_public_and_the_api_routes(start_ingest):
    # A budget of one such body: while the slow one holds it, others are told to come back.
    body = b'{"name": "slow", "provider": "none", "pad": "' + b"a" * 60 + b'"}'
    ingest = await start_ingest(
        http_read_timeout_seconds=READ_TIMEOUT, body_budget_bytes=len(body), body_budget_wait_seconds=0.2
    )
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    port = port_of(ingest)
    slow = asyncio.gather(
        trickle(port, request_head(f"/in/{source['id']}", length=len(body)), body),
        trickle(port, request_head("/v1/sources", length=len(body), token=key), body),
    )
    await asyncio.sleep(0.5)
    status, answer, headers = await ingest.call("POST", f"/in/{source['id']}", json={"type": "t"})
    assert status == 503 and answer["error"]["code"] == "busy" and headers["Retry-After"] == "1"
    public, api = await slow
    status, answer, _ = await ingest.call("POST", f"/in/{source['id']}", json={"type": "t"})
    assert status == 200, answer  # the timed-out request gave its share back
    for raw, seconds in (public, api):
        status, error = error_of(raw)
        assert status == 408 and error["code"] == "request_timeout", raw
        assert "body" in error["message"] and seconds < READ_TIMEOUT + 8
    status, listed, _ = await ingest.call("GET", "/v1/sources", token=key)
    assert [s["id"] for s in listed["data"]] == [source["id"]]  # the slow create did not happen


async def test_metrics_are_not_served_under_root_path(start_ingest):
    ingest = await start_ingest(root_path="/hooks")
    for path, expected in (("/hooks/metrics", 404), ("/metrics", 200), ("/hooks/healthz", 200), ("/hooks/readyz", 200)):
        async with ingest.session.get(ingest.base + path) as response:
            assert response.status == expected, path
            if expected == 404:
                assert (await response.json())["error"]["code"] == "not_found"


@pytest.mark.slow
async def test_gunicorn_workers_cut_off_slow_heads_and_bodies(settings, tmp_path):
    settings = settings.model_copy(update={"admin_token": "gunicorn-admin", "http_read_timeout_seconds": READ_TIMEOUT})
    with gunicorn_ingest(settings, tmp_path, workers=1):
        async with aiohttp.ClientSession() as session:
            client = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", settings, session)
            await client.wait_ready(timeout=60)
            source = await client.source(await client.tenant(), "none")
            body = b'{"type": "slow", "pad": "' + b"a" * 60 + b'"}'
            head, slow_body = await asyncio.gather(
                trickle(settings.ingest_port, b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 60),
                trickle(settings.ingest_port, request_head(f"/in/{source['id']}", length=len(body)), body),
            )
            for raw, seconds in (head, slow_body):
                status, error = error_of(raw)
                assert status == 408 and error["code"] == "request_timeout", raw
                assert seconds < READ_TIMEOUT + 8


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far."""
    with open(f"/proc/{pid}/status") as status:
        line = next(row for row in status if row.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


UPLOAD = 1_048_576
BUDGET = 4 * UPLOAD


@pytest.mark.slow
async def test_fifty_concurrent_1_mib_uploads_stay_within_the_body_budget(settings, amqp_url, tmp_path):
    settings = settings.model_copy(
        update={
            "admin_token": "budget-admin",
            "max_body_bytes": 2 * UPLOAD,
            "body_budget_bytes": BUDGET,
            "body_budget_wait_seconds": 60.0,  # a noisy machine must not turn waiting into 503s here
            "rate_limit_per_ip": 1000,
        }
    )
    process = start_service("ingest", settings, tmp_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            client = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", settings, session)
            await client.wait_ready(timeout=60)
            source = await client.source(await client.tenant(), "none")
            body = json.dumps({"type": "big", "data": "x" * (UPLOAD - 30)}).encode()
            headers = {"Content-Type": "application/json"}

            async def upload() -> int:
                async with session.post(f"{client.base}/in/{source['id']}", data=body, headers=headers) as response:
                    return response.status

            for _ in range(3):  # warm up: allocator arenas and the code paths, one at a time
                assert await upload() == 200
            before = peak_rss_bytes(process.pid)
            statuses = await asyncio.gather(*(upload() for _ in range(50)))
            growth = peak_rss_bytes(process.pid) - before
        assert statuses == [200] * 50  # all waited their turn, none was refused
        assert len(await drain_queue(amqp_url, client.dispatch_queues(), expect=53, timeout=30)) == 53
        print(f"peak RSS growth: {growth / UPLOAD:.1f} MiB for 50 x 1 MiB with a {BUDGET // UPLOAD} MiB budget")
        # Measured here: ~47 MiB with the 4 MiB budget; ~160 MiB with no budget (all 50 bodies
        # held at once with their parsed and encoded copies). See docs/ingest.md.
        assert growth < 100 * UPLOAD, growth / UPLOAD
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
