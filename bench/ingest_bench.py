"""`make bench`: the ingest against a bare baseline, measured in the same run.

The baseline is the least any durable webhook receiver must do: an aiohttp
handler that reads the body and publishes it to a quorum queue with
publisher confirms. Hookyard's ingest does that plus source lookup, rate
limits, HMAC verification and its recorder (message log + event publish)
in the same process. Both servers run as their own process, one at a time,
against the same broker; the load comes from a third process.

Printed: accepted requests/s at saturation (closed loop), and p50/p99
latency at half the baseline's maximum rate (open loop, latency measured
from each request's scheduled time, so a stall is not hidden), with ratios.

    python bench/ingest_bench.py [--seconds 8] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

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


def measure(url: str, secret: str, args, rate: float | None) -> dict:
    run_load(url, secret, 2, args.concurrency, None)  # warm-up: connections, caches
    return run_load(url, secret, args.seconds, args.concurrency, rate)


def orchestrate(args) -> int:
    from hookyard_cli.devstack import LocalMongo, LocalRabbitMQ, RabbitPorts

    with tempfile.TemporaryDirectory(prefix="hookyard-bench-") as tmp:
        tmp_path = Path(tmp)
        infra = []
        amqp_url, mongo_uri = os.environ.get("AMQP_URL"), os.environ.get("MONGO_URI")
        try:
            if not amqp_url:
                rabbit = LocalRabbitMQ(tmp_path / "rabbit", RabbitPorts.free(), tmp_path / "run", node="hookyard-bench")
                rabbit.start()
                infra.append(rabbit)
                amqp_url = rabbit.url
            if not mongo_uri:
                mongo = LocalMongo(tmp_path / "mongo", free_port(), tmp_path / "run")
                mongo.start()
                infra.append(mongo)
                mongo_uri = mongo.uri
            return _compare(args, amqp_url, mongo_uri, tmp_path)
        finally:
            for server in reversed(infra):
                server.stop()


def _compare(args, amqp_url: str, mongo_uri: str, tmp_path: Path) -> int:
    results = {}
    # 1. The baseline.
    port = free_port()
    bare = subprocess.Popen([sys.executable, str(HERE), "bare", "--port", str(port), "--amqp", amqp_url])
    try:
        _wait_port(port)
        url = f"http://127.0.0.1:{port}/in"
        results["bare", "max"] = measure(url, "unused", args, None)
        half_rate = results["bare", "max"]["rps"] / 2
        results["bare", "half"] = run_load(url, "unused", args.seconds, args.concurrency, half_rate)
    finally:
        stop(bare)

    # 2. Hookyard's ingest, with its recorder running in the same process.
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
        "HOOKYARD_LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / "ingest.log", "wb")
    ingest = subprocess.Popen([str(BIN / "hookyard-ingest")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz")
        tenant = api(base, "POST", "/v1/tenants", "bench-admin", {"name": "bench"})
        source = api(base, "POST", "/v1/sources", tenant["api_key"], {"name": "bench", "provider": "hmac"})
        url, secret = f"{base}/in/{source['id']}", source["secrets"][0]
        results["hookyard", "max"] = measure(url, secret, args, None)
        results["hookyard", "half"] = run_load(url, secret, args.seconds, args.concurrency, half_rate)
    finally:
        stop(ingest)

    bare_max, hy_max = results["bare", "max"], results["hookyard", "max"]
    bare_half, hy_half = results["bare", "half"], results["hookyard", "half"]
    ratio = hy_max["rps"] / bare_max["rps"]
    print(f"\nIngest benchmark: signed {PAYLOAD_BYTES} B JSON payloads, {args.seconds:g} s per run, "
          f"{args.concurrency} connections at saturation")
    print(f"{'':34}{'bare handler':>14}{'hookyard':>12}{'ratio':>8}")
    print(f"{'accepted req/s at saturation':34}{bare_max['rps']:>14.0f}{hy_max['rps']:>12.0f}{ratio:>8.2f}")
    print(f"{'p50 ms at saturation':34}{bare_max['p50_ms']:>14.2f}{hy_max['p50_ms']:>12.2f}{hy_max['p50_ms'] / bare_max['p50_ms']:>8.2f}")
    print(f"{'p99 ms at saturation':34}{bare_max['p99_ms']:>14.2f}{hy_max['p99_ms']:>12.2f}{hy_max['p99_ms'] / bare_max['p99_ms']:>8.2f}")
    label = f"at {half_rate:.0f} req/s (half bare max)"
    print(f"{'p50 ms ' + label:34}{bare_half['p50_ms']:>14.2f}{hy_half['p50_ms']:>12.2f}{hy_half['p50_ms'] / bare_half['p50_ms']:>8.2f}")
    print(f"{'p99 ms ' + label:34}{bare_half['p99_ms']:>14.2f}{hy_half['p99_ms']:>12.2f}{hy_half['p99_ms'] / bare_half['p99_ms']:>8.2f}")
    print(f"{'errors (all runs)':34}{bare_max['errors'] + bare_half['errors']:>14}{hy_max['errors'] + hy_half['errors']:>12}")
    print(f"\ntargets: throughput ratio >= 0.80 ({'met' if ratio >= 0.8 else 'NOT met'}), "
          f"p99 at half rate < 25 ms ({'met' if hy_half['p99_ms'] < 25 else 'NOT met'})")
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
        p.add_argument("--seconds", type=float, default=8)
        p.add_argument("--concurrency", type=int, default=32)
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
