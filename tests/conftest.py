"""Real servers for the tests: RabbitMQ and a MongoDB-compatible server.

Same precedence as `make up`: `AMQP_URL` / `MONGO_URI` when given, else
testcontainers when a Docker engine answers, else local processes (Debian's
RabbitMQ, SecantusDB) on free ports in a temporary directory.

Each test gets its own RabbitMQ vhost (when the management API is known) and
its own database, so tests never see each other's messages or documents.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from hookyard_cli.devstack import (
    InfraError,
    LocalMongo,
    LocalRabbitMQ,
    RabbitPorts,
    docker_available,
    free_port,
    free_ports,
)
from hookyard_common.broker import topology
from hookyard_common.core.settings import Settings


@dataclass
class Infra:
    amqp_url: str
    mongo_uri: str
    management_url: str | None = None  # http://host:port/ with guest credentials
    local_rabbit: LocalRabbitMQ | None = None
    notes: list[str] = field(default_factory=list)


def _start_containers(stack: ExitStack, need_rabbit: bool, need_mongo: bool) -> dict:
    found = {}
    if need_rabbit:
        from testcontainers.rabbitmq import RabbitMqContainer

        rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13-management"))
        rabbit.with_exposed_ports(5672, 15672)
        host, port = rabbit.get_container_host_ip(), rabbit.get_exposed_port(5672)
        found["amqp_url"] = f"amqp://guest:guest@{host}:{port}/"
        found["management_url"] = f"http://{host}:{rabbit.get_exposed_port(15672)}/"
    if need_mongo:
        from testcontainers.mongodb import MongoDbContainer

        mongo = stack.enter_context(MongoDbContainer("mongo:7"))
        found["mongo_uri"] = mongo.get_connection_url() + "/?directConnection=true&authSource=admin"
    return found


@pytest.fixture(scope="session")
def infra(tmp_path_factory) -> Iterator[Infra]:
    amqp_url = os.environ.get("AMQP_URL")
    mongo_uri = os.environ.get("MONGO_URI")
    with ExitStack() as stack:
        infra = Infra(amqp_url or "", mongo_uri or "")
        if (not amqp_url or not mongo_uri) and docker_available():
            found = _start_containers(stack, not amqp_url, not mongo_uri)
            infra.amqp_url = found.get("amqp_url", infra.amqp_url)
            infra.mongo_uri = found.get("mongo_uri", infra.mongo_uri)
            infra.management_url = found.get("management_url")
        base = tmp_path_factory.mktemp("infra")
        if not infra.amqp_url:
            rabbit = _start_rabbit(stack, base)
            infra.amqp_url, infra.management_url, infra.local_rabbit = (
                rabbit.url,
                rabbit.management_url,
                rabbit,
            )
        if not infra.mongo_uri:
            mongo = LocalMongo(base / "mongodb", free_port(), base / "run")
            stack.callback(mongo.stop)
            mongo.start()
            infra.mongo_uri = mongo.uri
        yield infra


def _start_rabbit(stack: ExitStack, base) -> LocalRabbitMQ:
    """A local node on free ports; a second try on new ports if another process took one meanwhile."""
    for attempt in range(2):
        rabbit = LocalRabbitMQ(
            base / f"rabbitmq-{attempt}",
            RabbitPorts.free(),
            base / "run",
            node=f"hookyard-test-{os.getpid()}-{attempt}",
        )
        try:
            rabbit.start()
        except InfraError:
            rabbit.stop()
            if attempt:
                raise
            continue
        stack.callback(rabbit.stop)
        return rabbit
    raise AssertionError("unreachable")


def _management(infra: Infra, method: str, path: str, body: dict | None = None) -> None:
    request = urllib.request.Request(
        infra.management_url.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(),
            "Content-Type": "application/json",
        },
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary() -> None:
    # Refused broker calls leave aiormq futures whose finaliser logs; collected during a plugin's
    # late import, that Python code runs inside CPython 3.11's AST builder, which then fails
    # ("AST constructor recursion depth mismatch"). Finalise them before the summary instead.
    gc.collect()


@pytest.fixture
def management(infra: Infra):
    """`call(method, path, body)` on RabbitMQ's management HTTP API as guest; skips without one."""
    if not infra.management_url:
        pytest.skip("no RabbitMQ management API")
    return lambda method, path, body=None: _management(infra, method, path, body)


async def _delete_known_queues(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for spec in topology.queue_specs(Settings().retry_tiers_ms):
            await channel.queue_delete(spec.name)


@pytest.fixture
async def amqp_url(infra: Infra) -> str:
    """A broker URL whose vhost is this test's alone (or a cleaned shared vhost)."""
    if infra.management_url is None:
        await _delete_known_queues(infra.amqp_url)
        yield infra.amqp_url
        return
    vhost = f"test-{uuid.uuid4().hex[:12]}"
    _management(infra, "PUT", f"/api/vhosts/{vhost}")
    _management(infra, "PUT", f"/api/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    yield infra.amqp_url.rstrip("/") + "/" + vhost
    _management(infra, "DELETE", f"/api/vhosts/{vhost}")


@pytest.fixture
async def mongo_db(infra: Infra) -> str:
    name = f"hookyard_test_{uuid.uuid4().hex[:12]}"
    yield name
    client = AsyncMongoClient(infra.mongo_uri)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
def settings(infra: Infra, amqp_url: str, mongo_db: str) -> Settings:
    """Settings pointing at this test's vhost and database, with free ports."""
    ingest, dispatcher, retrier, heartbeat = free_ports(4)
    ports = {"dispatcher": dispatcher, "retrier": retrier, "heartbeat": heartbeat}
    management = infra.management_url.replace("://", "://guest:guest@", 1) if infra.management_url else ""
    return Settings(
        amqp_url=amqp_url,
        mongo_uri=infra.mongo_uri,
        mongo_db=mongo_db,
        ingest_port=ingest,
        dispatcher_port=dispatcher,
        retrier_port=retrier,
        heartbeat_port=heartbeat,
        connect_attempts=5,
        shutdown_deadline_seconds=10,
        retry_tiers_ms=(200, 1_000),
        rabbitmq_management_url=management,
        service_ready_urls={name: f"http://127.0.0.1:{port}/readyz" for name, port in ports.items()},
    )


@pytest.fixture
async def start_ingest(settings):
    """Start the ingest in-process on a free port; returns an `IngestClient`. Stopped after the test."""
    import asyncio

    import aiohttp

    from helpers import IngestClient
    from hookyard_common.runtime import runner
    from hookyard_ingest.app import create_app

    running: list = []

    async def start(clock=None, **overrides) -> IngestClient:
        """`clock`: where monitors read the time (a test's movable clock); settings from `overrides`."""
        config = settings.model_copy(update={"admin_token": "test-admin-token", **overrides})
        app = create_app(config, clock) if clock else create_app(config)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.serve_app(app, "ingest", config, stop))
        session = aiohttp.ClientSession()
        client = IngestClient(f"http://127.0.0.1:{config.ingest_port}", config, session)
        running.append((stop, task, session))
        await client.wait_ready()
        return client

    yield start
    for stop, task, session in running:
        stop.set()
        await asyncio.wait_for(task, 30)
        await session.close()


@pytest.fixture
async def ingest(start_ingest):
    return await start_ingest()


@pytest.fixture
async def start_consumer(settings):
    """Run a consumer service (`name`, its `setup`) in-process until the test ends; returns its app."""
    import asyncio

    from hookyard_common.runtime import runner

    running = []

    async def start(name: str, setup, **overrides):
        config = settings.model_copy(update=overrides)
        stop = asyncio.Event()
        app = runner.build_app(name, setup, config)
        running.append((stop, asyncio.create_task(runner.serve_app(app, name, config, stop))))
        await asyncio.wait_for(runner.lifecycle_of(app).ready.wait(), 30)
        return app

    yield start
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def start_dispatcher(start_consumer):
    """Run the dispatcher in-process (its intake writes the message log). Stopped after the test."""
    from hookyard_dispatcher.main import setup

    async def start(**overrides):
        return await start_consumer("dispatcher", setup, **overrides)

    return start


@pytest.fixture
async def receiver():
    from helpers import Receiver

    server = await Receiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def start_platform(start_ingest, start_dispatcher, start_consumer):
    """Start ingest, dispatcher and retrier in-process, delivering to loopback, with a fast retry
    schedule (plus any setting overrides); returns the ingest's client. Stopped after the test."""
    from hookyard_retrier.main import setup as retrier_setup

    async def start(**overrides):
        fast = {
            "delivery_allowed_cidrs": ("127.0.0.0/8",),
            "retry_tiers_ms": (50, 200, 1_000),
            "retry_min_penalty_seconds": 0.0,
            "endpoint_cache_seconds": 0.2,
            **overrides,
        }
        ingest = await start_ingest(**fast)
        await start_dispatcher(**fast)
        await start_consumer("retrier", retrier_setup, **fast)
        return ingest

    return start


@pytest.fixture
async def platform(start_platform):
    """Ingest, dispatcher and retrier in-process, delivering to loopback, with a fast retry schedule."""
    return await start_platform()


@pytest.fixture
async def store(settings):
    """This test's database, to read what the services stored."""
    from hookyard_common.store.client import Store

    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def _span_exporter():
    # One provider for the whole run: pymongo's instrumentation keeps the provider it was first
    # given (core/tracing.py), as a service does, so each test only clears what was recorded.
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def spans(_span_exporter):
    """Tracing on for this test, into an in-memory exporter (the finished spans)."""
    from hookyard_common.core import tracing

    provider, exporter = _span_exporter
    exporter.clear()
    tracing.enable(provider)
    yield exporter
    tracing.disable()
