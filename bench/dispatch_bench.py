"""The dispatcher end to end against a bare consumer loop, measured in the same run.

Events are published onto the broker (`hookyard.events`, confirmed) as fast
as they go; each carries its publish time. They are consumed from
`hookyard.dispatch` and POSTed to a local aiohttp sink, which records each
arrival. Two consumers take turns on the same queue:

- bare: an aio-pika consumer (prefetch 64) that POSTs each message body
  through one aiohttp session and acks — no validation, routing, signing,
  recording or retries;
- hookyard: `hookyard-dispatcher` with one matching endpoint: validation,
  endpoint lookup (cached), Standard Webhooks signing, SSRF guard, batched
  attempt records, retry scheduling.

Printed: events/s delivered (publish of the first → receipt of the last) and
p50/p99 publish-to-receipt latency, with ratios.

    python bench/dispatch_bench.py [--events 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from ingest_bench import BIN, free_port, group_cpu_seconds, local_infra, percentile, stop, wait_http  # noqa: E402

PREFETCH = 64


# ---------------------------------------------------------------- the sink


async def sink(port: int) -> None:
    from aiohttp import web

    arrivals: list[tuple[float, float]] = []

    async def receive(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        sent = (body.get("data") or body.get("payload"))["sent"]
        arrivals.append((sent, time.time()))
        return web.Response(text="ok")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals})

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"received": len(arrivals)})

    async def reset(_: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    app.router.add_get("/stats", stats)
    app.router.add_get("/count", count)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    await runner.cleanup()


# ---------------------------------------------------------------- the bare consumer


async def bare_consumer(amqp_url: str, target: str) -> None:
    import aio_pika
    import aiohttp

    from hookyard_common.broker import topology

    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(topology.DISPATCH_QUEUE)
    session = aiohttp.ClientSession()

    async def handle(message) -> None:
        async with session.post(target, data=message.body, headers={"Content-Type": "application/json"}) as r:
            await r.read()
        await message.ack()

    await queue.consume(handle)
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    await session.close()
    await connection.close()


# ---------------------------------------------------------------- orchestration


async def publish(amqp_url: str, tenant_id: str, count: int) -> None:
    from hookyard_common.broker.connection import Broker
    from hookyard_common.schemas import Event

    broker = await Broker.connect(amqp_url, (1_000,))
    try:

        async def one(n: int) -> None:
            event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": n, "sent": time.time()})
            await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")

        for start in range(0, count, 200):  # confirms pipelined, 200 at a time
            await asyncio.gather(*(one(n) for n in range(start, min(count, start + 200))))
    finally:
        await broker.close()


def sink_stats(port: int) -> list[tuple[float, float]]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=30) as response:
        return orjson.loads(response.read())["arrivals"]


def sink_count(port: int) -> int:
    """How many the sink received (cheap to ask often, unlike `sink_stats`)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=30) as response:
        return orjson.loads(response.read())["received"]


def sink_reset(port: int) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/reset", method="POST"), timeout=10).close()


def run_once(
    consumer_argv: list[str],
    env: dict,
    amqp_url: str,
    tenant_id: str,
    sink_port: int,
    events: int,
    log,
    groups: dict[str, int],
) -> dict:
    """One run; with the CPU time each process spent on it, in ms per 1,000 events."""
    sink_reset(sink_port)
    consumer = subprocess.Popen(consumer_argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    groups = {**groups, "consumer": consumer.pid}
    try:
        time.sleep(2.0)  # connected and consuming
        cpu_before = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
        started = time.time()
        asyncio.run(publish(amqp_url, tenant_id, events))
        deadline = time.time() + 300
        while time.time() < deadline:
            arrivals = sink_stats(sink_port)
            if len(arrivals) >= events:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # the last attempt records written behind the deliveries
        cpu = {name: group_cpu_seconds(pgid) - cpu_before[name] for name, pgid in groups.items()}
    finally:
        stop(consumer)
    latencies = [received - sent for sent, received in arrivals]
    last = max(received for _, received in arrivals)
    return {
        "events": len(arrivals),
        "rate": len(arrivals) / (last - started),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_ms_per_1000": {name: seconds * 1e6 / len(arrivals) for name, seconds in cpu.items()},
    }


def setup_tenant(amqp_url: str, mongo_uri: str, database: str, sink_url: str, lane: bool = False) -> str:
    """A tenant with one endpoint to the sink, written straight into the database. With `lane`,
    its tenant document too, so dispatchers starting after give it a lane (else its events go
    to the shared queue, which the bare consumer reads)."""

    async def run() -> str:
        from hookyard_common.broker.connection import Broker
        from hookyard_common.delivery import signing
        from hookyard_common.delivery.endpoint_cache import COLLECTION as ENDPOINTS
        from hookyard_common.delivery.endpoints import Endpoint
        from hookyard_common.records.tenants import COLLECTION as TENANTS
        from hookyard_common.schemas import new_id, utcnow
        from hookyard_common.store.client import Store

        await (await Broker.connect(amqp_url, (1_000,))).close()  # declares the queues both consumers use
        store = await Store.connect(mongo_uri, database)
        tenant_id, now = new_id("ten"), utcnow()
        endpoint = Endpoint.model_validate(
            {
                "_id": new_id("ep"),
                "tenant_id": tenant_id,
                "url": sink_url,
                "max_in_flight": PREFETCH,
                "secrets": [{"secret": signing.new_secret()}],
                "created_at": now,
                "updated_at": now,
            }
        )
        await store[ENDPOINTS].insert_one(endpoint.model_dump(by_alias=True))
        if lane:
            await store[TENANTS].insert_one(
                {"_id": tenant_id, "name": tenant_id, "api_key_hash": tenant_id, "created_at": now}
            )
        await store.close()
        return tenant_id

    return asyncio.run(run())


def orchestrate(args) -> int:
    groups: dict[str, int] = {}
    with local_infra("dispatch-bench", groups) as (amqp_url, mongo_uri, tmp_path):
        return compare(args, amqp_url, mongo_uri, tmp_path, groups)


def compare(args, amqp_url: str, mongo_uri: str, tmp_path: Path, groups: dict[str, int]) -> int:
    sink_port = free_port()
    sink_process = subprocess.Popen(
        [sys.executable, str(HERE), "sink", "--port", str(sink_port)], start_new_session=True
    )
    groups = {**groups, "sink": sink_process.pid}
    try:
        with open(tmp_path / "consumers.log", "wb") as log:
            wait_http(f"http://127.0.0.1:{sink_port}/stats")
            sink_url = f"http://127.0.0.1:{sink_port}/hook"
            database = "hookyard_dispatch_bench"
            tenant_id = setup_tenant(amqp_url, mongo_uri, database, sink_url)
            env = {
                **os.environ,
                "AMQP_URL": amqp_url,
                "MONGO_URI": mongo_uri,
                "HOOKYARD_MONGO_DB": database,
                "HOOKYARD_DISPATCHER_PORT": str(free_port()),
                "HOOKYARD_DELIVERY_ALLOWED_CIDRS": '["127.0.0.0/8"]',
                "HOOKYARD_PREFETCH": str(PREFETCH),
                "HOOKYARD_LOG_LEVEL": "WARNING",
            }
            consumers = {
                "bare": [sys.executable, str(HERE), "bare", "--amqp", amqp_url, "--target", sink_url],
                "hookyard": [str(BIN / "hookyard-dispatcher")],
            }
            runs: dict[str, list[dict]] = {"bare": [], "hookyard": []}
            for _ in range(args.rounds):
                for name, argv in consumers.items():
                    runs[name].append(run_once(argv, env, amqp_url, tenant_id, sink_port, args.events, log, groups))
    finally:
        stop(sink_process)

    best = {name: max(rs, key=lambda r: r["rate"]) for name, rs in runs.items()}
    bare, hy = best["bare"], best["hookyard"]
    print(
        f"\nDispatcher benchmark: {args.events} events published to the broker and delivered to a local sink; "
        f"best of {args.rounds} alternating rounds"
    )
    print(f"{'':36}{'bare loop':>12}{'hookyard':>12}{'ratio':>8}")
    print(f"{'events/s delivered':36}{bare['rate']:>12.0f}{hy['rate']:>12.0f}{hy['rate'] / bare['rate']:>8.2f}")
    print(
        f"{'p50 ms publish to receipt':36}{bare['p50_ms']:>12.1f}{hy['p50_ms']:>12.1f}"
        f"{hy['p50_ms'] / bare['p50_ms']:>8.2f}"
    )
    print(
        f"{'p99 ms publish to receipt':36}{bare['p99_ms']:>12.1f}{hy['p99_ms']:>12.1f}"
        f"{hy['p99_ms'] / bare['p99_ms']:>8.2f}"
    )
    print("\nCPU ms per 1,000 events (of the best rounds)")
    for name in bare["cpu_ms_per_1000"]:
        b, h = bare["cpu_ms_per_1000"][name], hy["cpu_ms_per_1000"][name]
        print(f"{name:36}{b:>12.0f}{h:>12.0f}")
    b, h = sum(bare["cpu_ms_per_1000"].values()), sum(hy["cpu_ms_per_1000"].values())
    print(f"{'all':36}{b:>12.0f}{h:>12.0f}")
    ratio = hy["rate"] / bare["rate"]
    print(f"\ntarget: throughput ratio >= 0.80 ({'met' if ratio >= 0.8 else 'NOT met'})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    sink_parser = sub.add_parser("sink")
    sink_parser.add_argument("--port", type=int, required=True)
    bare = sub.add_parser("bare")
    bare.add_argument("--amqp", required=True)
    bare.add_argument("--target", required=True)
    args = parser.parse_args()
    if args.mode == "sink":
        asyncio.run(sink(args.port))
        return 0
    if args.mode == "bare":
        asyncio.run(bare_consumer(args.amqp, args.target))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
