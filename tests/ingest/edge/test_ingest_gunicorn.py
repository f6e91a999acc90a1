"""The ingest under gunicorn with several workers (seed 000's deployment).

Each request goes on a connection of its own (one keep-alive connection would be
served by one worker however many there are), and the worker that answered is
read from the kernel: the process holding the server end of that connection
(/proc/net/tcp gives the socket, /proc/<pid>/fd its owner).
"""

import asyncio
import os
from pathlib import Path

import aiohttp
import orjson
import pytest

from helpers import IngestClient, drain_queue, gunicorn_ingest

WORKERS = 2
MAX_REQUESTS = 200  # the bound on the connections it takes for every worker to answer
TOGETHER = 8  # connections opened at once, so a worker busy accepting leaves the next to another


def workers_of(master: int) -> list[int]:
    """The gunicorn master's children: its workers."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(entry.name))
    return children


def holder_of(server_port: int, client_port: int, pids: list[int]) -> int:
    """Which of `pids` holds the server end of the loopback connection from `client_port`."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = next(
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[1] == local and fields[2] == remote
    )
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds the connection from :{client_port}")


async def alone(port: int, workers: list[int], method: str, path: str, body: dict | None = None) -> tuple[int, int]:
    """(status, pid of the worker that answered) of one request on a connection of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        raw = orjson.dumps(body) if body is not None else b""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )
        head = await reader.readuntil(b"\r\n\r\n")
        # Still open, so the server end is still held by the worker that answered.
        return int(head.split()[1]), holder_of(port, writer.get_extra_info("sockname")[1], workers)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.slow
async def answering(port: int, workers: list[int], method: str, path: str, body=lambda n: None) -> dict[int, int]:
    """Requests on connections of their own, `TOGETHER` at a time, until every worker answered 200
    (at most MAX_REQUESTS, within 60 s): how many each answered."""
    served: dict[int, int] = {}
    sent = 0
    deadline = asyncio.get_running_loop().time() + 60
    while set(served) != set(workers) and sent < MAX_REQUESTS and asyncio.get_running_loop().time() < deadline:
        answers = await asyncio.gather(*(alone(port, workers, method, path, body(sent + n)) for n in range(TOGETHER)))
        for status, pid in answers:
            if status == 200:
                served[pid] = served.get(pid, 0) + 1
                sent += 1
            elif method == "GET":  # readiness: a worker still starting says so; ask again shortly
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{method} {path}: {status} from worker {pid}")
    assert set(served) == set(workers), f"after {sent} answers only {served} answered {method} {path}"
    return served


async def test_every_gunicorn_worker_serves_and_metrics_count_them_all(settings, amqp_url, tmp_path):
    settings = settings.model_copy(update={"admin_token": "gunicorn-admin"})
    port = settings.ingest_port
    with gunicorn_ingest(settings, tmp_path, workers=WORKERS) as master:
        async with aiohttp.ClientSession() as session:
            client = IngestClient(f"http://127.0.0.1:{port}", settings, session)
            await client.wait_ready(timeout=60)
            key = await client.tenant()
            source = await client.source(key, "none")
            workers = workers_of(master.pid)
            assert len(workers) == WORKERS, workers
            await answering(port, workers, "GET", "/readyz")  # each worker started, not only the first
            served = await answering(port, workers, "POST", f"/in/{source['id']}", lambda n: {"type": "t", "n": n})
            sent = sum(served.values())
            assert len(await drain_queue(amqp_url, client.dispatch_queues(), expect=sent)) == sent
            status, metrics, _ = await client.call("GET", "/metrics")
            # Aggregated over the workers: every request counted, whichever worker took it.
            line = next(
                row
                for row in metrics.splitlines()
                if row.startswith("hookyard_ingest_requests_total{") and "accepted" in row
            )
            assert float(line.rsplit(" ", 1)[1]) == sent, served
