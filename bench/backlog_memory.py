"""Memory under backlog: each service's resident memory idle, then while 100,000 events go through.

Every service runs as its own process on a local broker and database: the
dispatcher (which works the backlog, delivering to a local sink), the retrier,
the heartbeat and the ingest (which have no share of it, but must not grow
either while the broker is loaded). Their resident set (VmRSS of each
process group, so gunicorn's workers would count too) is sampled for a few
seconds idle, then every 0.25 s while the events are published with confirms
and delivered, until the sink has them all. Printed: idle (median of the
samples) and peak per service, and the ratio against the 1.2x target; the
broker holds the backlog, the prefetch bounds what a process holds.

    python bench/backlog_memory.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from dispatch_bench import PREFETCH, publish, setup_tenant, sink_count  # noqa: E402
from ingest_bench import BIN, free_port, local_infra, median, stop, wait_http  # noqa: E402
from targets import at_most, report  # noqa: E402

SERVICES = ("dispatcher", "retrier", "heartbeat", "ingest")
#: The bound of issue 18: resident memory while working within this multiple of idle.
TARGET = 1.2


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of the live processes of a process group (VmRSS, /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def sample(pids: dict[str, int], seconds: float | None, until: threading.Event | None = None) -> dict[str, list[int]]:
    """RSS of each group every 0.25 s, for `seconds` or until `until` is set."""
    samples: dict[str, list[int]] = {name: [] for name in pids}
    deadline = time.monotonic() + seconds if seconds is not None else None
    while (deadline is None or time.monotonic() < deadline) and not (until and until.is_set()):
        for name, pid in pids.items():
            samples[name].append(group_rss_bytes(pid))
        time.sleep(0.25)
    return samples


def start_services(amqp_url: str, mongo_uri: str, database: str, log) -> dict[str, tuple[subprocess.Popen, int]]:
    common = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "MONGO_URI": mongo_uri,
        "HOOKYARD_MONGO_DB": database,
        "HOOKYARD_DELIVERY_ALLOWED_CIDRS": '["127.0.0.0/8"]',
        "HOOKYARD_PREFETCH": str(PREFETCH),
        "HOOKYARD_LOG_LEVEL": "WARNING",
        "HOOKYARD_ADMIN_TOKEN": "bench-admin",
    }
    started = {}
    for service in SERVICES:
        port = free_port()
        env = {**common, f"HOOKYARD_{service.upper()}_PORT": str(port)}
        process = subprocess.Popen(
            [str(BIN / f"hookyard-{service}")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started[service] = (process, port)
    for _, port in started.values():
        wait_http(f"http://127.0.0.1:{port}/readyz")
    return started


def measure(args, amqp_url: str, mongo_uri: str, tmp_path: Path) -> dict[str, tuple[float, float]]:
    sink_port = free_port()
    sink_process = subprocess.Popen(
        [sys.executable, str(HERE.parent / "dispatch_bench.py"), "sink", "--port", str(sink_port)],
        start_new_session=True,
    )
    database = "hookyard_backlog_bench"
    try:
        wait_http(f"http://127.0.0.1:{sink_port}/stats")
        tenant_id = setup_tenant(amqp_url, mongo_uri, database, f"http://127.0.0.1:{sink_port}/hook")
        with open(tmp_path / "services.log", "wb") as log:
            services = start_services(amqp_url, mongo_uri, database, log)
            try:
                pids = {name: process.pid for name, (process, _) in services.items()}
                idle = sample(pids, args.idle_seconds)
                done = threading.Event()
                busy: dict[str, list[int]] = {}
                sampler = threading.Thread(target=lambda: busy.update(sample(pids, None, done)))
                sampler.start()
                asyncio.run(publish(amqp_url, tenant_id, args.events))
                deadline = time.monotonic() + 600
                while sink_count(sink_port) < args.events and time.monotonic() < deadline:
                    time.sleep(0.5)
                done.set()
                sampler.join()
                delivered = sink_count(sink_port)
            finally:
                for process, _ in services.values():
                    stop(process)
    finally:
        stop(sink_process)
    if delivered < args.events:
        raise RuntimeError(f"only {delivered} of {args.events} events delivered")
    return {name: (median(idle[name]), max(busy[name])) for name in SERVICES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=4.0)
    args = parser.parse_args()
    with local_infra("backlog-memory") as (amqp_url, mongo_uri, tmp_path):
        figures = measure(args, amqp_url, mongo_uri, tmp_path)
    print(f"\nMemory under backlog: {args.events} events published and delivered, prefetch {PREFETCH}")
    print(f"{'':20}{'idle MiB':>10}{'peak MiB':>10}{'ratio':>8}")
    for name, (idle, peak) in figures.items():
        print(f"{name:20}{idle / 2**20:>10.1f}{peak / 2**20:>10.1f}{peak / idle:>8.2f}")
    report([at_most(f"{name} resident memory under backlog vs idle", p, i, TARGET) for name, (i, p) in figures.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
