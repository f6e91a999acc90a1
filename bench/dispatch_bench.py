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

Besides, in the same run: a Celery peer (`celery_peer.py`: prefork pool,
`acks_late`, a pooled `requests.Session`) at several concurrencies, the
fastest being the ratio's peer; two dispatcher replicas on the queue; and both
loops at half the bare loop's rate, open loop.

Printed: events/s delivered (publish of the first → receipt of the last),
p50/p99 publish-to-receipt latency, events per CPU-second of each consumer
(per core), with ratios, and issue 18's targets met or not (`targets.py`).

    python bench/dispatch_bench.py [--events 3000] [--rounds 2] [--half-seconds 5] [--half-rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from ingest_bench import (  # noqa: E402
    BIN,
    LOOPS,
    free_port,
    group_cpu_seconds,
    local_infra,
    median,
    percentile,
    run_on,
    stop,
    wait_http,
)
from targets import at_least, at_most, report  # noqa: E402

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


async def publish(amqp_url: str, tenant_id: str, count: int, rate: float | None = None) -> None:
    """`count` events onto `hookyard.events`, confirmed: as fast as they go (200 confirms in
    flight), or paced at `rate` per second (open loop: a slow consumer does not slow it)."""
    from hookyard_common.broker.connection import Broker
    from hookyard_common.schemas import Event

    broker = await Broker.connect(amqp_url, (1_000,))
    try:

        async def one(n: int) -> None:
            event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": n, "sent": time.time()})
            await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")

        async for start, stop_at in batches(count, rate):
            await asyncio.gather(*(one(n) for n in range(start, stop_at)))
    finally:
        await broker.close()


async def batches(count: int, rate: float | None) -> AsyncIterator[tuple[int, int]]:
    """[start, stop) ranges of the events to publish: 200 at a time, or one tick's worth every
    10 ms at `rate`, each tick scheduled from the start so a late one is caught up, not lost."""
    size = 200 if rate is None else max(1, round(rate / 100))
    began = time.monotonic()
    for tick, start in enumerate(range(0, count, size)):
        if rate is not None:
            await asyncio.sleep(max(0.0, began + tick * size / rate - time.monotonic()))
        yield start, min(count, start + size)


def publish_celery(tenant_id: str, count: int, rate: float | None = None) -> None:
    """The same events as Celery tasks, through one Celery producer (Celery's own publish path)."""
    from celery_peer import app, deliver
    from hookyard_common.schemas import Event

    async def run() -> None:
        with app.producer_or_acquire() as producer:
            async for start, stop_at in batches(count, rate):
                for n in range(start, stop_at):
                    event = Event(
                        tenant_id=tenant_id, event_type="order.created", payload={"n": n, "sent": time.time()}
                    )
                    deliver.apply_async(args=[event.to_bytes().decode()], producer=producer)

    asyncio.run(run())


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


#: A way to put `count` events on the broker (at `rate` per second, or as fast as it goes).
Publisher = Callable[[int, float | None], None]

#: Celery worker concurrencies tried; the fastest is the peer of the ratio.
CELERY_CONCURRENCIES = (2, 4, 8, 16)


def run_once(
    consumers: list[tuple[list[str], dict]],
    publisher: Publisher,
    sink_port: int,
    events: int,
    log,
    groups: dict[str, int],
    rate: float | None = None,
    settle: float = 2.0,
) -> dict:
    """One run of the consumer processes; with the CPU time each process group spent on it,
    in ms per 1,000 events (all consumer processes together as "consumer")."""
    sink_reset(sink_port)
    started_consumers = [
        subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for argv, env in consumers
    ]

    def cpu_now() -> dict[str, float]:
        cpu = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
        return {**cpu, "consumer": sum(group_cpu_seconds(c.pid) for c in started_consumers)}

    try:
        for _, env in consumers:  # a dispatcher says when it is consuming; the others get `settle`
            if "HOOKYARD_DISPATCHER_PORT" in env:
                wait_http(f"http://127.0.0.1:{env['HOOKYARD_DISPATCHER_PORT']}/readyz")
        time.sleep(settle)  # connected and consuming
        cpu_before = cpu_now()
        started = time.time()
        publisher(events, rate)
        deadline = time.time() + 300
        while time.time() < deadline and sink_count(sink_port) < events:
            time.sleep(0.2)
        time.sleep(0.5)  # the last attempt records written behind the deliveries
        cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
        arrivals = sink_stats(sink_port)
    finally:
        for consumer in started_consumers:
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
            runs = measure_all(args, amqp_url, mongo_uri, sink_port, log, groups)
    finally:
        stop(sink_process)
    print_figures(args, runs)
    return 0


def measure_all(args, amqp_url: str, mongo_uri: str, sink_port: int, log, groups: dict[str, int]) -> dict:
    """Every run of the bench, by name: saturation rounds alternating bare and hookyard, the
    Celery sweep, two dispatcher replicas, then both loops at half the bare loop's rate."""
    sink_url = f"http://127.0.0.1:{sink_port}/hook"
    database = "hookyard_dispatch_bench"
    tenant_id = setup_tenant(amqp_url, mongo_uri, database, sink_url)

    def dispatcher_env() -> dict:
        return {
            **os.environ,
            "AMQP_URL": amqp_url,
            "MONGO_URI": mongo_uri,
            "HOOKYARD_MONGO_DB": database,
            "HOOKYARD_DISPATCHER_PORT": str(free_port()),
            "HOOKYARD_DELIVERY_ALLOWED_CIDRS": '["127.0.0.0/8"]',
            "HOOKYARD_PREFETCH": str(PREFETCH),
            "HOOKYARD_LOG_LEVEL": "WARNING",
        }

    bare_argv = [sys.executable, str(HERE), "bare", "--amqp", amqp_url, "--target", sink_url, "--loop", args.bare_loop]
    bare = [(bare_argv, dict(os.environ))]
    hookyard = [([str(BIN / "hookyard-dispatcher")], dispatcher_env())]
    replicas = [([str(BIN / "hookyard-dispatcher")], dispatcher_env()) for _ in range(2)]
    celery_env = {**os.environ, "BENCH_AMQP_URL": amqp_url, "BENCH_TARGET": sink_url, "PYTHONPATH": str(HERE.parent)}

    def to_exchange(count: int, rate: float | None) -> None:
        asyncio.run(publish(amqp_url, tenant_id, count, rate))

    def to_celery(count: int, rate: float | None) -> None:
        publish_celery(tenant_id, count, rate)

    def run(consumers, publisher=to_exchange, rate=None, events=args.events, settle=2.0) -> dict:
        return run_once(consumers, publisher, sink_port, events, log, groups, rate, settle)

    os.environ["BENCH_AMQP_URL"] = amqp_url  # the Celery producer in this process
    runs: dict[str, list[dict]] = {"bare": [], "hookyard": []}
    for _ in range(args.rounds):
        runs["bare"].append(run(bare))
        runs["hookyard"].append(run(hookyard))
    for concurrency in CELERY_CONCURRENCIES:
        worker = [str(BIN / "celery"), "-A", "celery_peer", "worker", "--pool", "prefork"]
        worker += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "-l", "WARNING"]
        runs[f"celery {concurrency}"] = [run([(worker, celery_env)], to_celery, settle=5.0)]
    runs["hookyard x2"] = [run(replicas, settle=3.0)]
    half = max(r["rate"] for r in runs["bare"]) / 2
    half_events = max(500, int(half * args.half_seconds))
    for _ in range(args.half_rounds):
        runs.setdefault("bare half", []).append(run(bare, rate=half, events=half_events))
        runs.setdefault("hookyard half", []).append(run(hookyard, rate=half, events=half_events))
    runs["half rate"] = [{"rate": half}]
    return runs


def print_figures(args, runs: dict[str, list[dict]]) -> None:
    best = {name: max(rs, key=lambda r: r["rate"]) for name, rs in runs.items()}
    bare, hy = best["bare"], best["hookyard"]
    celery_name = max((n for n in best if n.startswith("celery")), key=lambda n: best[n]["rate"])
    celery = best[celery_name]
    half = best["half rate"]["rate"]
    print(
        f"\nDispatcher benchmark: {args.events} events published to the broker and delivered to a local sink; "
        f"best of {args.rounds} alternating rounds (Celery: one run per concurrency)"
    )
    print(f"{'':36}{'bare loop':>12}{'hookyard':>12}{'ratio':>8}{celery_name:>12}{'ratio':>8}")
    for label, field in (("events/s delivered", "rate"), ("p50 ms publish to receipt", "p50_ms")):
        print(
            f"{label:36}{bare[field]:>12.1f}{hy[field]:>12.1f}{hy[field] / bare[field]:>8.2f}"
            f"{celery[field]:>12.1f}{hy[field] / celery[field]:>8.2f}"
        )
    print(
        f"{'p99 ms publish to receipt':36}{bare['p99_ms']:>12.1f}{hy['p99_ms']:>12.1f}{'':>8}{celery['p99_ms']:>12.1f}"
    )
    half_p99 = {name: median([r["p99_ms"] for r in runs[f"{name} half"]]) for name in ("bare", "hookyard")}
    half_p50 = {name: median([r["p50_ms"] for r in runs[f"{name} half"]]) for name in ("bare", "hookyard")}
    print(f"{f'p50 ms at {half:.0f} events/s (median)':36}{half_p50['bare']:>12.1f}{half_p50['hookyard']:>12.1f}")
    print(f"{f'p99 ms at {half:.0f} events/s (median)':36}{half_p99['bare']:>12.1f}{half_p99['hookyard']:>12.1f}")

    print("\nCelery (prefork, acks_late, pooled requests.Session), by concurrency:")
    for name in (n for n in best if n.startswith("celery")):
        r = best[name]
        print(f"  {name:34}{r['rate']:>8.0f} events/s  p99 {r['p99_ms']:>7.0f} ms")

    two = best["hookyard x2"]
    print("\nThe process model: events/s, and events per CPU-second of the consumer processes (per core)")
    for name in ("bare", "hookyard", "hookyard x2", celery_name):
        r = best[name]
        per_core = 1e6 / r["cpu_ms_per_1000"]["consumer"]
        print(f"  {name:34}{r['rate']:>8.0f} events/s  {per_core:>8.0f} per core")
    print(f"  two replicas against one: {two['rate'] / hy['rate']:.2f}x")
    per_core = celery["cpu_ms_per_1000"]["consumer"] / hy["cpu_ms_per_1000"]["consumer"]
    print(
        f"  hookyard against {celery_name}, per core: {per_core:.2f}x (a process count wins CPU share on a busy host)"
    )

    print("\nCPU ms per 1,000 events (of the best rounds)")
    names = ("bare", "hookyard", celery_name)
    print(f"{'':36}" + "".join(f"{n:>12}" for n in names))
    for process in bare["cpu_ms_per_1000"]:
        print(f"{process:36}" + "".join(f"{best[n]['cpu_ms_per_1000'][process]:>12.0f}" for n in names))
    print(f"{'all':36}" + "".join(f"{sum(best[n]['cpu_ms_per_1000'].values()):>12.0f}" for n in names))
    report(
        [
            at_least("dispatcher events/s vs the pooled bare loop", hy["rate"], bare["rate"], 1.0),
            at_least(f"dispatcher events/s vs Celery ({celery_name})", hy["rate"], celery["rate"], 2.0),
            at_most("dispatcher p99 at half rate vs the bare loop's", half_p99["hookyard"], half_p99["bare"], 1.5),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--half-seconds", type=float, default=5.0)
    parser.add_argument("--half-rounds", type=int, default=2)
    parser.add_argument("--bare-loop", choices=LOOPS, default="asyncio", help="the bare loop's event loop")
    sink_parser = sub.add_parser("sink")
    sink_parser.add_argument("--port", type=int, required=True)
    bare = sub.add_parser("bare")
    bare.add_argument("--amqp", required=True)
    bare.add_argument("--target", required=True)
    bare.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args()
    if args.mode == "sink":
        asyncio.run(sink(args.port))
        return 0
    if args.mode == "bare":
        run_on(args.loop, bare_consumer(args.amqp, args.target))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
