"""`make bench`: the ingest against a bare baseline, measured in the same run.

The baseline is the least any durable webhook receiver must do: an aiohttp
handler that reads the body and publishes it to a quorum queue with
publisher confirms. Hookyard's ingest does that plus source lookup, rate
limits, HMAC verification and its recorder (message log + event publish)
in the same process. Both servers run as their own process, one at a time,
against the same broker; the load comes from a third process.

Printed: accepted requests/s at saturation (closed loop), and p50/p99
latency at half the baseline's maximum rate (open loop, latency measured
from each request's scheduled time, so a stall is not hidden), with ratios;
then the ingest under gunicorn (`--workers`, 2) at saturation, and each
server's requests per CPU-second (per core); issue 18's targets met or not.

    python bench/ingest_bench.py [--seconds 6] [--rounds 3] [--concurrency 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import orjson

from targets import at_least, at_most, report

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


def signed_request(secret: str, n: int) -> tuple[bytes, dict]:
    """A distinct JSON body of exactly PAYLOAD_BYTES, HMAC-signed as a `hmac` source expects."""
    head = {"type": "reservation_update", "id": f"bench-{os.getpid()}-{n}"}
    padding = PAYLOAD_BYTES - len(orjson.dumps({**head, "pad": ""}))
    body = orjson.dumps({**head, "pad": "x" * padding})
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Webhook-Signature": signature}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def load(url: str, secret: str, seconds: float, concurrency: int, rate: float | None) -> dict:
    """Closed loop (`rate` None: `concurrency` senders back to back) or open loop at `rate` req/s."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=concurrency * 4 if rate else concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float) -> None:
            nonlocal errors, counter
            counter += 1
            body, headers = signed_request(secret, counter)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
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
    import urllib.request

    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


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


def _start_bare(amqp_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, str(HERE), "bare", "--port", str(port), "--amqp", amqp_url]
    process = subprocess.Popen(argv, start_new_session=True)
    _wait_port(port)
    return process, f"http://127.0.0.1:{port}/in"


def _start_ingest(amqp_url: str, mongo_uri: str, tmp_path: Path, workers: int = 0) -> tuple[subprocess.Popen, str, str]:
    """Hookyard's ingest, with a `hmac` source: (process, source URL, secret). With `workers`,
    under gunicorn with that many worker processes (services/ingest/gunicorn.conf.py)."""
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
    }
    argv = [str(BIN / "hookyard-ingest")]
    if workers:
        argv = [str(BIN / "gunicorn"), "-c", str(HERE.parents[1] / "services/ingest/gunicorn.conf.py")]
        env |= {"GUNICORN_WORKERS": str(workers), "GUNICORN_BIND": f"127.0.0.1:{port}"}
    with open(tmp_path / "ingest.log", "ab") as log:  # the process keeps its own copy of the descriptor
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1 + 10 * workers):  # each gunicorn worker is ready once its own connections are: ask many
            wait_http(base + "/readyz")
        tenant = api(base, "POST", "/v1/tenants", "bench-admin", {"name": "bench"})
        source = api(base, "POST", "/v1/sources", tenant["api_key"], {"name": "bench", "provider": "hmac"})
    except BaseException:
        stop(process)  # a server left behind would outlive the bench
        raise
    return process, f"{base}/in/{source['id']}", source["secrets"][0]


def purge(amqp_url: str) -> None:
    """Empty the queues the servers fill: a real deployment has consumers draining them."""

    async def run() -> None:
        import aio_pika

        from hookyard_common.broker import topology

        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            for name in (BARE_QUEUE, topology.DISPATCH_QUEUE):
                queue = await channel.get_queue(name)
                await queue.purge()

    asyncio.run(run())


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _compare(args, amqp_url: str, mongo_uri: str, tmp_path: Path) -> int:
    """Both servers up at once (an idle one costs nothing); runs alternate, so noise from
    the shared machine falls on both alike. Throughput: best of the rounds; latency: median."""
    bare, bare_url = _start_bare(amqp_url)
    ingest, hy_url, secret = _start_ingest(amqp_url, mongo_uri, tmp_path)
    targets = {"bare": (bare_url, "unused"), "hookyard": (hy_url, secret)}
    runs: dict[tuple[str, str], list[dict]] = {}

    servers = {"bare": bare, "hookyard": ingest}

    def measure(name: str, kind: str, rate: float | None) -> None:
        url, key = targets[name]
        cpu_before = group_cpu_seconds(servers[name].pid)
        result = run_load(url, key, args.seconds, args.concurrency, rate)
        result["server_cpu_s"] = group_cpu_seconds(servers[name].pid) - cpu_before
        runs.setdefault((name, kind), []).append(result)
        purge(amqp_url)

    try:
        for url, key in targets.values():
            run_load(url, key, 2, args.concurrency, None)  # warm-up: connections, caches
        purge(amqp_url)
        for _ in range(args.rounds):
            for name in targets:
                measure(name, "max", None)
        half_rate = max(r["rps"] for r in runs["bare", "max"]) / 2
        for _ in range(args.rounds):
            for name in targets:
                measure(name, "half", half_rate)
    finally:
        stop(bare)
        stop(ingest)
    if args.workers:  # the process model: the same ingest under gunicorn, at saturation
        workers, url, key = _start_ingest(amqp_url, mongo_uri, tmp_path, args.workers)
        targets[name := f"gunicorn x{args.workers}"] = (url, key)
        servers[name] = workers
        try:
            run_load(url, key, 2, args.concurrency, None)
            purge(amqp_url)
            for _ in range(args.rounds):
                measure(name, "max", None)
        finally:
            stop(workers)

    def best(name: str) -> dict:
        return max(runs[name, "max"], key=lambda r: r["rps"])

    def at_half(name: str, field: str) -> float:
        return median([r[field] for r in runs[name, "half"]])

    bare_max, hy_max = best("bare"), best("hookyard")
    errors = {name: sum(r["errors"] for key, rs in runs.items() if key[0] == name for r in rs) for name in servers}
    rows = [
        ("accepted req/s at saturation (best)", bare_max["rps"], hy_max["rps"], "{:.0f}"),
        ("p50 ms at saturation", bare_max["p50_ms"], hy_max["p50_ms"], "{:.2f}"),
        ("p99 ms at saturation", bare_max["p99_ms"], hy_max["p99_ms"], "{:.2f}"),
        (
            f"p50 ms at {half_rate:.0f} req/s (median)",
            at_half("bare", "p50_ms"),
            at_half("hookyard", "p50_ms"),
            "{:.2f}",
        ),
        (
            f"p99 ms at {half_rate:.0f} req/s (median)",
            at_half("bare", "p99_ms"),
            at_half("hookyard", "p99_ms"),
            "{:.2f}",
        ),
    ]
    print(
        f"\nIngest benchmark: HMAC-signed {PAYLOAD_BYTES} B JSON payloads; {args.rounds} alternating rounds "
        f"of {args.seconds:g} s; {args.concurrency} connections at saturation; half rate = half the bare maximum"
    )
    print(f"{'':40}{'bare handler':>14}{'hookyard':>12}{'ratio':>8}")
    for label, bare_value, hy_value, fmt in rows:
        print(f"{label:40}{fmt.format(bare_value):>14}{fmt.format(hy_value):>12}{hy_value / bare_value:>8.2f}")
    print(f"{'errors (all runs)':40}{errors['bare']:>14}{errors['hookyard']:>12}")
    print("\nThe process model: accepted req/s at saturation, and per core (requests per CPU-second of the server)")
    for name in servers:
        r = best(name)
        print(f"  {name:38}{r['rps']:>8.0f} req/s  {r['rps'] * args.seconds / r['server_cpu_s']:>8.0f} per core")
        if name not in ("bare", "hookyard"):
            print(f"  {'':38}errors {errors[name]}; {r['rps'] / hy_max['rps']:.2f}x one process")
    report(
        [
            at_least("ingest accepted req/s vs the bare handler", hy_max["rps"], bare_max["rps"], 1.0),
            at_most(
                "ingest p99 at half rate vs the bare handler's",
                at_half("hookyard", "p99_ms"),
                at_half("bare", "p99_ms"),
                1.5,
            ),
        ]
    )
    return 0


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
    for p in (parser, run):
        p.add_argument("--seconds", type=float, default=6)
        p.add_argument("--concurrency", type=int, default=32)
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--workers", type=int, default=2, help="gunicorn workers of the process-model run; 0: none")
    bare = sub.add_parser("bare")
    bare.add_argument("--port", type=int, required=True)
    bare.add_argument("--amqp", required=True)
    gen = sub.add_parser("load")
    gen.add_argument("--url", required=True)
    gen.add_argument("--secret", required=True)
    gen.add_argument("--seconds", type=float, required=True)
    gen.add_argument("--concurrency", type=int, required=True)
    gen.add_argument("--rate", type=float)
    args = parser.parse_args()
    if args.mode == "bare":
        asyncio.run(bare_server(args.port, args.amqp))
        return 0
    if args.mode == "load":
        print(json.dumps(asyncio.run(load(args.url, args.secret, args.seconds, args.concurrency, args.rate))))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
