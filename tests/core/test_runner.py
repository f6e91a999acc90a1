"""The service runner: probes, readiness that follows the broker, reconnection, shutdown."""

import asyncio
import gc

import aiohttp
import pytest

from hookyard_cli.devstack import LocalRabbitMQ, RabbitPorts
from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context


async def _readyz(session, port):
    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
        return response.status, await response.json()


async def _poll(predicate, timeout):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


async def test_probes_and_clean_stop_in_process(settings):
    stop = asyncio.Event()

    async def setup(ctx: Context) -> None:
        pass

    task = asyncio.create_task(runner.serve("dispatcher", setup, settings=settings, stop_signal=stop))
    port = settings.dispatcher_port
    async with aiohttp.ClientSession() as session:
        await _poll(lambda: _is_ready(session, port, True), 30)
        status, body = await _readyz(session, port)
        assert (status, body["checks"]) == (200, {"broker": True, "database": True})
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
    stop.set()
    assert await asyncio.wait_for(task, 15) == 0


async def test_start_up_failure_is_reported_and_exits_non_zero(settings):
    settings = settings.model_copy(
        update={"amqp_url": "amqp://guest:guest@127.0.0.1:1/", "connect_attempts": 2, "connect_max_wait_seconds": 0.1}
    )

    async def setup(ctx: Context) -> None:
        raise AssertionError("setup must not run without a broker")

    code = await asyncio.wait_for(runner.serve("retrier", setup, settings=settings, stop_signal=asyncio.Event()), 30)
    assert code == 1


BACKLOG = 20


@pytest.mark.slow
async def test_readiness_follows_the_broker_and_consumers_come_back(settings, infra, tmp_path):
    """Kill the broker under a running service: /readyz fails, then recovers by itself. A backlog
    published (and confirmed) before the broker went down, and held unacked by the consumer,
    is delivered again after it returns: acks come after the work, and the queue is durable."""
    if infra.local_rabbit is None:
        pytest.skip("needs a broker this test can kill (a local RabbitMQ node)")
    rabbit = LocalRabbitMQ(tmp_path / "rabbit", RabbitPorts.free(), tmp_path / "run", node="hookyard-outage")
    rabbit.start()
    settings = settings.model_copy(update={"amqp_url": rabbit.url})
    received: list[bytes] = []
    held: list[bytes] = []
    broker_back = asyncio.Event()
    stop = asyncio.Event()

    async def setup(ctx: Context) -> None:
        async def collect(message):
            if broker_back.is_set():
                received.append(message.body)
                return
            held.append(message.body)  # in hand when the broker dies: never acked
            await broker_back.wait()

        await ctx.consume(topology.DISPATCH_QUEUE, collect)

    task = asyncio.create_task(runner.serve("dispatcher", setup, settings=settings, stop_signal=stop))
    port = settings.dispatcher_port
    backlog = {f"backlog-{n}".encode() for n in range(BACKLOG)}
    try:
        async with aiohttp.ClientSession() as session:
            await _poll(lambda: _is_ready(session, port, True), 30)
            publisher = await Broker.connect(rabbit.url, settings.retry_tiers_ms)
            for body in sorted(backlog):
                await publisher.publish(body, routing_key="ten.a")
            await publisher.close()
            await _poll(lambda: _true(len(held) == BACKLOG), 15)

            rabbit.kill()
            await _poll(lambda: _is_ready(session, port, False), 15)
            status, body = await _readyz(session, port)
            assert status == 503 and body["checks"]["broker"] is False
            broker_back.set()  # the handlers in hand return; their acks have no channel left to go to

            rabbit.start()
            await _poll(lambda: _is_ready(session, port, True), 60)

        await _poll(lambda: _true(backlog <= set(received)), 30)
        # The consumer was restored with the connection: a new event reaches it too.
        publisher = await Broker.connect(rabbit.url, settings.retry_tiers_ms)
        await publisher.publish(b"after-restart", routing_key="ten.a")
        await publisher.close()
        await _poll(lambda: _true(b"after-restart" in received), 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        rabbit.stop()


async def _is_ready(session, port, expected):
    try:
        status, _ = await _readyz(session, port)
    except aiohttp.ClientError:
        return False
    return (status == 200) is expected


async def _true(value):
    return value


@pytest.mark.parametrize(("name", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_a_service_runs_on_the_event_loop_the_settings_name(settings, name, module):
    """`runner.main` makes its loop with `loop_factory`; `running_loop` is what /metrics reports."""
    loop = runner.loop_factory(settings.model_copy(update={"event_loop": name}).event_loop)()
    try:
        assert type(loop).__module__.split(".")[0] == module
        assert loop.run_until_complete(_loop_name()) == name
    finally:
        loop.close()


async def _loop_name() -> str:
    return runner.running_loop()


def test_garbage_is_collected_less_often_and_start_up_is_frozen_out():
    before = gc.get_threshold()
    try:
        runner.tune_gc()
        assert gc.get_threshold()[0] == runner.GC_YOUNG_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
