"""Helpers shared by tests: running service processes and waiting on them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from hookyard_common.broker import topology
from hookyard_common.core import logs
from hookyard_common.core.settings import Settings, environment_variables

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def service_env(settings: Settings) -> dict[str, str]:
    """The environment variables that give a service process these settings."""
    env = dict(os.environ)
    for name, variable in environment_variables().items():
        value = getattr(settings, name)
        env[variable] = (
            json.dumps(list(value) if isinstance(value, tuple) else value)
            if isinstance(value, tuple | dict)
            else str(value)
        )
    return env


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not listening (yet)
        return 0, b""


def wait_until(check, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def eventually(check, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """`check()`'s first truthy result (it may be a coroutine function), polled every `interval`
    for at most `timeout` s: a wait for a condition, never a fixed window that a busy machine misses."""
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def start_service(name: str, settings: Settings, log_dir: Path) -> subprocess.Popen:
    with open(log_dir / f"{name}.log", "wb") as log:  # the service keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(BIN / f"hookyard-{name}")],
            env=service_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextlib.contextmanager
def gunicorn_ingest(settings: Settings, log_dir: Path, workers: int) -> Iterator[subprocess.Popen]:
    """The ingest under gunicorn (services/ingest/gunicorn.conf.py) with `workers` workers;
    on leaving, stopped by SIGTERM, which it must obey with a clean exit."""
    log = log_dir / "gunicorn.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(REPO / "services/ingest/gunicorn.conf.py")],
            env={**service_env(settings), "GUNICORN_WORKERS": str(workers)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class IngestClient:
    """A tenant's and an admin's view of a running ingest, over real HTTP."""

    def __init__(self, base_url: str, settings: Settings, session):
        self.tenant_ids: list[str] = []
        self.base = base_url
        self.settings = settings
        self.session = session

    @property
    def prefix(self) -> str:
        return self.base + self.settings.root_path

    async def wait_ready(self, timeout: float = 30.0) -> None:
        import asyncio

        for _ in range(int(timeout / 0.1)):
            try:
                async with self.session.get(self.base + "/readyz") as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("ingest did not become ready")

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs):
        """(status, parsed JSON or text, headers) of one request to the ingest."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.prefix + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(raw), response.headers
            return response.status, raw.decode(errors="replace"), response.headers

    async def tenant(self, name: str = "acme") -> str:
        status, body, _ = await self.call("POST", "/v1/tenants", token=self.settings.admin_token, json={"name": name})
        assert status == 201, body
        self.tenant_ids.append(body["id"])
        return body["api_key"]

    def dispatch_queues(self) -> list[str]:
        """Where the dispatcher reads the events of the tenants this client created: their lanes,
        and the shared queue (lane-less events)."""
        return [*(topology.lane_queue(t) for t in self.tenant_ids), topology.DISPATCH_QUEUE]

    async def source(self, api_key: str, provider: str, **fields) -> dict:
        status, body, _ = await self.call(
            "POST", "/v1/sources", token=api_key, json={"name": f"{provider} source", "provider": provider, **fields}
        )
        assert status == 201, body
        return body

    async def wait_for_messages(self, api_key: str, count: int, timeout: float = 10.0, **params) -> list[dict]:
        import asyncio

        for _ in range(int(timeout / 0.05)):
            status, body, _ = await self.call("GET", "/v1/messages", token=api_key, params=params)
            assert status == 200, body
            if len(body["data"]) >= count:
                return body["data"]
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} logged messages, have {len(body['data'])}")


async def drain_queue(
    amqp_url: str, queue: str | list[str], *, expect: int, timeout: float = 10.0, settle: float = 0.3
) -> list:
    """Take (and ack) messages from `queue` (or several) until `expect` arrived and `settle` s pass with no more."""
    import asyncio

    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    taken = []
    async with connection:
        channel = await connection.channel()
        sources = [await channel.get_queue(name) for name in ([queue] if isinstance(queue, str) else queue)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_until = None
        while loop.time() < deadline:
            got = [m for m in [await source.get(fail=False) for source in sources] if m is not None]
            if got:
                for message in got:
                    await message.ack()
                taken.extend(got)
                quiet_until = None
                continue
            if len(taken) >= expect:
                quiet_until = quiet_until or loop.time() + settle
                if loop.time() >= quiet_until:
                    break
            await asyncio.sleep(0.02)
    return taken


class Receiver:
    """A real HTTP server standing in for tenants' endpoints. Each path has its own behaviour:
    `behave(path, [(status, sleep_seconds[, headers[, body]]), ...])` answers in that order, then repeats
    the last (the body `answer <status>` unless given)."""

    def __init__(self):
        self.requests: dict[str, list] = {}
        self.plans: dict[str, list[tuple[int, float]]] = {}
        self.port = None
        self._runner = None

    def behave(self, path: str, plan: list[tuple[int, float]]) -> str:
        self.plans[path] = list(plan)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Receiver:
        import asyncio

        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.setdefault(request.path, []).append(
                {"headers": dict(request.headers), "body": body, "at": time.monotonic()}
            )
            plan = self.plans.get(request.path, [(200, 0)])
            status, sleep, *extra = plan.pop(0) if len(plan) > 1 else plan[0]
            if sleep:
                await asyncio.sleep(sleep)
            headers = extra[0] if extra else None
            if len(extra) > 1:
                return web.Response(status=status, body=extra[1], headers=headers)
            return web.Response(status=status, text=f"answer {status}", headers=headers)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        from hookyard_cli.devstack import free_port

        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list:
        import asyncio

        for _ in range(int(timeout / 0.02)):
            if len(self.requests.get(path, [])) >= count:
                return self.requests[path]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{path}: expected {count} requests, got {len(self.requests.get(path, []))}")


# Tenant-API calls the delivery tests share.
async def endpoint(ingest, key, url, **fields) -> dict:
    status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": url, **fields})
    assert status == 201, body
    return body


async def publish(ingest, key, event_type, payload=None, **fields) -> str:
    status, body, _ = await ingest.call(
        "POST", "/v1/events", token=key, json={"event_type": event_type, "payload": payload or {}, **fields}
    )
    assert status == 202, body
    return body["id"]


async def attempts_of(ingest, key, event_id, count: int, timeout: float = 5.0) -> list[dict]:
    """The event's attempts through the API, once `count` are recorded (written behind the deliveries)."""
    import asyncio

    for _ in range(int(timeout / 0.05)):
        status, attempts, _ = await ingest.call("GET", f"/v1/events/{event_id}/attempts", token=key)
        assert status == 200, attempts
        if len(attempts["data"]) >= count:
            return attempts["data"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} attempts of {event_id}, have {len(attempts['data'])}")


class Lines(logging.Handler):
    """The records as the service's JSON formatter writes them, at the time they are logged."""

    def __init__(self, level: int = logging.INFO):
        super().__init__(level)
        self.setFormatter(logs.JsonFormatter("test"))
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))
