"""`make bench`: the ingest against a bare baseline, measured in the same run.

The baseline is the least any durable webhook receiver must do: an aiohttp
handler that reads the body and publishes it to a quorum queue with
publisher confirms. Hookyard's ingest does that plus source lookup, rate
limits, HMAC verification and the event (`/in/{source}`), or the API key
and the event's validation (`POST /v1/events`). Each server runs as its own
process (the ingest optionally under gunicorn, `--workers`), one load at a
time, against the same broker; the load comes from a third process.

Printed: accepted requests/s at saturation (closed loop), p50/p99 latency at
half the baseline's maximum rate (open loop, latency measured from each
request's scheduled time, so a stall is not hidden), and each server's CPU
time per request, with ratios and issue 18's targets.

    python bench/ingest_bench.py [--seconds 6] [--rounds 3] [--concurrency 32] [--routes in,events] [--workers N]
    python bench/ingest_bench.py profile --route in|events|bare   # py-spy: uv sync --group bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from targets import at_least, at_most
from targets import report as verdict_report

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
PAYLOAD_BYTES = 2048
BARE_QUEUE = "bench.bare"


# ---------------------------------------------------------------- the baseline server


async def bare_server(port: int, amqp_url: str) -> None:
    import aio_pika
    from aiohttp import web

    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(BARE_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=BARE_QUEUE
        )
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await connection.close()


# ---------------------------------------------------------------- the load generator


def padded(fields: dict) -> dict:
    """`fields` plus a padding field, so that their JSON is exactly PAYLOAD_BYTES."""
    padding = PAYLOAD_BYTES - len(orjson.dumps({**fields, "pad": ""}))
    return {**fields, "pad": "x" * padding}


def signed_request(secret: str, n: int) -> tuple[bytes, dict]:
    """A distinct JSON body of exactly PAYLOAD_BYTES, HMAC-signed as a `hmac` source expects."""
    body = orjson.dumps(padded({"type": "reservation_update", "id": f"bench-{os.getpid()}-{n}"}))
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Webhook-Signature": signature}


def event_request(api_key: str, n: int) -> tuple[bytes, dict]:
    """A distinct `POST /v1/events` body whose payload is PAYLOAD_BYTES, with the tenant's API key."""
    payload = padded({"id": f"bench-{os.getpid()}-{n}"})
    body = orjson.dumps({"event_type": "reservation.updated", "payload": payload})
    return body, {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def load(url: str, secret: str, seconds: float, concurrency: int, rate: float | None) -> dict:
    """Closed loop (`rate` None: `concurrency` senders back to back) or open loop at `rate` req/s."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    make_request = event_request if url.endswith("/v1/events") else signed_request
    connector = aiohttp.TCPConnector(limit=concurrency * 4 if rate else concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float) -> None:
            nonlocal errors, counter
            counter += 1
            body, headers = make_request(secret, counter)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status in (200, 202)
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1

        started = time.perf_counter()
        end = started + seconds
        if rate is None:

            async def sender() -> None:
                while time.perf_counter() < end:
                    await one(time.perf_counter())

            await asyncio.gather(*(sender() for _ in range(concurrency)))
        else:
            tasks = []
            interval = 1.0 / rate
            n = 0
            while (scheduled := started + n * interval) < end:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(scheduled)))
                n += 1
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {
        "accepted": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


# ---------------------------------------------------------------- orchestration


#: The event loops a bare peer can run on: the standard library's, as the least receiver is
#: written, or uvloop's, which Hookyard's services run on (HOOKYARD_EVENT_LOOP).
LOOPS = ("asyncio", "uvloop")


def run_on(loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Run a bare peer on the event loop named."""
    from hookyard_common.runtime.runner import loop_factory  # the services' own choice of loop

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(main)


def free_port() -> int:
    from hookyard_cli.devstack import free_port as free

    return free()


def run_load(url: str, secret: str, seconds: float, concurrency: int, rate: float | None) -> dict:
    argv = [sys.executable, str(HERE), "load", "--url", url, "--secret", secret, "--seconds", str(seconds)]
    argv += ["--concurrency", str(concurrency)] + (["--rate", str(rate)] if rate else [])
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def api(base: str, method: str, path: str, token: str, body: dict) -> dict:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            # Under gunicorn, /readyz was answered by one worker; another may still be starting.
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is the process group; 11 and 12 utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_infra(name: str, groups: dict[str, int] | None = None):
    """(AMQP URL, MongoDB URI, scratch dir): the environment's, else local servers for the run.

    `groups`, when given, is filled with the process group of each local server
    ("broker", "database"), so their CPU use can be measured.
    """
    from hookyard_cli.devstack import LocalMongo, LocalRabbitMQ, RabbitPorts

    with tempfile.TemporaryDirectory(prefix=f"hookyard-{name}-") as tmp:
        tmp_path = Path(tmp)
        servers: list[LocalRabbitMQ | LocalMongo] = []
        amqp_url, mongo_uri = os.environ.get("AMQP_URL"), os.environ.get("MONGO_URI")
        try:
            if not amqp_url:
                rabbit = LocalRabbitMQ(
                    tmp_path / "rabbit", RabbitPorts.free(), tmp_path / "run", node=f"hookyard-{name}"
                )
                servers.append(rabbit)
                rabbit.start()
                amqp_url = rabbit.url
                if groups is not None:
                    groups["broker"] = rabbit.server.pid
            if not mongo_uri:
                mongo = LocalMongo(tmp_path / "mongo", free_port(), tmp_path / "run")
                servers.append(mongo)
                mongo.start()
                mongo_uri = mongo.uri
                if groups is not None:
                    groups["database"] = mongo.process.pid
            yield amqp_url, mongo_uri, tmp_path
        finally:
            for server in reversed(servers):
                server.stop()


def orchestrate(args) -> int:
    with local_infra("bench") as (amqp_url, mongo_uri, tmp_path):
        return _compare(args, amqp_url, mongo_uri, tmp_path)


def _start_bare(amqp_url: str, loop: str = "asyncio") -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, str(HERE), "bare", "--port", str(port), "--amqp", amqp_url, "--loop", loop]
    process = subprocess.Popen(argv, start_new_session=True)  # its own process group, for its CPU time
    _wait_port(port)
    return process, f"http://127.0.0.1:{port}/in"


@dataclasses.dataclass(frozen=True)
class Ingest:
    """A running ingest under test, with a tenant and its `hmac` source."""

    process: subprocess.Popen
    in_url: str
    secret: str
    events_url: str
    tenant: dict  # `id`, `api_key`


def _start_ingest(amqp_url: str, mongo_uri: str, tmp_path: Path, workers: int = 0) -> Ingest:
    """Hookyard's ingest with a `hmac` source, as one process, or under gunicorn with `workers`."""
    port = free_port()
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "MONGO_URI": mongo_uri,
        "HOOKYARD_MONGO_DB": "hookyard_bench",
        "HOOKYARD_INGEST_PORT": str(port),
        "HOOKYARD_ADMIN_TOKEN": "bench-admin",
        "HOOKYARD_RATE_LIMIT_PER_IP": "100000000",
        "HOOKYARD_RATE_LIMIT_PER_SOURCE": "100000000",
        "HOOKYARD_RATE_LIMIT_PER_IP_TOTAL": "100000000",
        "HOOKYARD_LOG_LEVEL": "WARNING",
        "GUNICORN_WORKERS": str(workers),
    }
    argv = [str(BIN / "hookyard-ingest")]
    if workers:
        argv = [str(BIN / "gunicorn"), "-c", str(HERE.parents[1] / "services" / "ingest" / "gunicorn.conf.py")]
    with open(tmp_path / "ingest.log", "ab") as log:  # the process keeps its own copy of the descriptor
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/readyz")
    tenant = api(base, "POST", "/v1/tenants", "bench-admin", {"name": "bench"})
    source = api(base, "POST", "/v1/sources", tenant["api_key"], {"name": "bench", "provider": "hmac"})
    return Ingest(process, f"{base}/in/{source['id']}", source["secrets"][0], f"{base}/v1/events", tenant)


def profile(args) -> int:
    """`profile`: py-spy samples one server (the ingest as one process, or the bare handler)
    while the load saturates one route; prints the load's figures."""
    with local_infra("profile") as (amqp_url, mongo_uri, tmp_path):
        if args.route == "bare":
            process, url = _start_bare(amqp_url)
            key = "unused"
        else:
            ingest = _start_ingest(amqp_url, mongo_uri, tmp_path, 0)
            process = ingest.process
            url, key = (
                (ingest.events_url, ingest.tenant["api_key"])
                if args.route == "events"
                else (ingest.in_url, ingest.secret)
            )
        spy = [str(BIN / "py-spy"), "record", "--pid", str(process.pid), "--duration", str(int(args.seconds))]
        spy += ["--format", args.format, "--output", args.output, "--nonblocking"]
        try:
            run_load(url, key, 2, args.concurrency, None)  # warm-up
            sampler = subprocess.Popen(spy)
            result = run_load(url, key, args.seconds, args.concurrency, None)
            sampler.wait()
        finally:
            stop(process)
    print(json.dumps(result))
    return 0


def purge(amqp_url: str, lanes: tuple[str, ...] = ()) -> None:
    """Empty the queues the servers fill, the tenants' `lanes` too: a real deployment has consumers
    draining them, and a backlog growing run after run would slow the broker's confirms."""

    async def run() -> None:
        import aio_pika

        from hookyard_common.broker import topology

        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            for name in (BARE_QUEUE, topology.DISPATCH_QUEUE, *map(topology.lane_queue, lanes)):
                queue = await channel.get_queue(name)
                await queue.purge()

    asyncio.run(run())


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _compare(args, amqp_url: str, mongo_uri: str, tmp_path: Path) -> int:
    """Every server up at once (an idle one costs nothing); runs alternate, so noise from
    the shared machine falls on all alike. Throughput: best of the rounds; latency: median.
    Each server's CPU time per request is read from /proc, for its rate per core."""
    bare, bare_url = _start_bare(amqp_url, args.bare_loop)
    ingest = _start_ingest(amqp_url, mongo_uri, tmp_path, args.workers)
    processes = {"bare": bare, "hookyard": ingest.process}
    targets = {"bare": (bare_url, "unused", bare)}
    if "in" in args.routes:
        targets["hookyard"] = (ingest.in_url, ingest.secret, ingest.process)
    if "events" in args.routes:
        targets["hookyard events"] = (ingest.events_url, ingest.tenant["api_key"], ingest.process)
    runs: dict[tuple[str, str], list[dict]] = {}
    lanes = (ingest.tenant["id"],)

    def measure(name: str, kind: str, rate: float | None) -> None:
        url, key, process = targets[name]
        cpu = group_cpu_seconds(process.pid)
        result = run_load(url, key, args.seconds, args.concurrency, rate)
        result["cpu_ms_per_request"] = (group_cpu_seconds(process.pid) - cpu) * 1000 / max(1, result["accepted"])
        runs.setdefault((name, kind), []).append(result)
        purge(amqp_url, lanes)

    try:
        for url, key, _ in targets.values():
            run_load(url, key, 2, args.concurrency, None)  # warm-up: connections, caches
        purge(amqp_url, lanes)
        for _ in range(args.rounds):
            for name in targets:
                measure(name, "max", None)
        half_rate = max(r["rps"] for r in runs["bare", "max"]) / 2
        for _ in range(args.rounds):
            for name in targets:
                measure(name, "half", half_rate)
    finally:
        for process in processes.values():
            stop(process)
    report(args, runs, list(targets), half_rate)
    return 0


def report(args, runs: dict[tuple[str, str], list[dict]], names: list[str], half_rate: float) -> None:
    """The table, one column per server, ratios to the bare handler, and the targets met or not."""

    def best(name: str) -> dict:
        return max(runs[name, "max"], key=lambda r: r["rps"])

    def at_half(name: str, field: str) -> float:
        return median([r[field] for r in runs[name, "half"]])

    rows = [
        ("accepted req/s at saturation (best)", lambda n: best(n)["rps"], "{:.0f}"),
        ("p50 ms at saturation", lambda n: best(n)["p50_ms"], "{:.2f}"),
        ("p99 ms at saturation", lambda n: best(n)["p99_ms"], "{:.2f}"),
        (f"p50 ms at {half_rate:.0f} req/s (median)", lambda n: at_half(n, "p50_ms"), "{:.2f}"),
        (f"p99 ms at {half_rate:.0f} req/s (median)", lambda n: at_half(n, "p99_ms"), "{:.2f}"),
        ("CPU ms per request at saturation", lambda n: best(n)["cpu_ms_per_request"], "{:.3f}"),
        ("req/s per core (1000 / CPU ms)", lambda n: 1000 / best(n)["cpu_ms_per_request"], "{:.0f}"),
    ]
    workers = f"gunicorn, {args.workers} workers" if args.workers else "one process"
    print(
        f"\nIngest benchmark: HMAC-signed {PAYLOAD_BYTES} B JSON payloads; {args.rounds} alternating rounds "
        f"of {args.seconds:g} s; {args.concurrency} connections at saturation; half rate = half the bare maximum; "
        f"the ingest as {workers}"
    )
    print(f"{'':40}" + "".join(f"{name:>16}{'ratio':>7}" for name in names))
    for label, value, fmt in rows:
        base = value("bare")
        cells = "".join(f"{fmt.format(value(n)):>16}{value(n) / base:>7.2f}" for n in names)
        print(f"{label:40}{cells}")
    errors = {n: sum(r["errors"] for key, rs in runs.items() if key[0] == n for r in rs) for n in names}
    print(f"{'errors (all runs)':40}" + "".join(f"{errors[n]:>16}{'':7}" for n in names))
    verdicts = []
    for name in names[1:]:
        verdicts += [
            at_least(
                f"ingest ({name}, {workers}) req/s vs the bare handler", best(name)["rps"], best("bare")["rps"], 1.0
            ),
            at_most(
                f"ingest ({name}, {workers}) p99 at half rate vs bare",
                at_half(name, "p99_ms"),
                at_half("bare", "p99_ms"),
                1.5,
            ),
        ]
    verdict_report(verdicts)


def _wait_port(port: int, timeout: float = 30) -> None:
    from hookyard_cli.devstack import port_open

    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    run = sub.add_parser("run")
    spy = sub.add_parser("profile", help="py-spy records the ingest under saturation (uv sync --group bench)")
    for p in (parser, run, spy):
        p.add_argument("--seconds", type=float, default=6)
        p.add_argument("--concurrency", type=int, default=32)
    for p in (parser, run):
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--routes", default="in,events", help="what to load besides the bare handler: in, events")
        p.add_argument("--workers", type=int, default=0, help="run the ingest under gunicorn with this many")
        p.add_argument("--bare-loop", choices=LOOPS, default="asyncio", help="the bare handler's event loop")
    spy.add_argument("--route", choices=("in", "events", "bare"), default="in")
    spy.add_argument("--format", default="raw", help="py-spy's output format: raw, flamegraph, speedscope")
    spy.add_argument("--output", default="ingest-profile.txt")
    bare = sub.add_parser("bare")
    bare.add_argument("--port", type=int, required=True)
    bare.add_argument("--amqp", required=True)
    bare.add_argument("--loop", choices=LOOPS, default="asyncio")
    gen = sub.add_parser("load")
    gen.add_argument("--url", required=True)
    gen.add_argument("--secret", required=True)
    gen.add_argument("--seconds", type=float, required=True)
    gen.add_argument("--concurrency", type=int, required=True)
    gen.add_argument("--rate", type=float)
    args = parser.parse_args()
    if args.mode == "bare":
        run_on(args.loop, bare_server(args.port, args.amqp))
        return 0
    if args.mode == "profile":
        return profile(args)
    if args.mode == "load":
        print(json.dumps(asyncio.run(load(args.url, args.secret, args.seconds, args.concurrency, args.rate))))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
