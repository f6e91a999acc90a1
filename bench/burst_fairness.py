"""How long one tenant's single events wait while another tenant's burst drains.

Tenant A publishes a burst straight onto the broker (`hookyard.events`,
confirmed, 200 at a time); tenant B then publishes one event every 100 ms
until A's burst is delivered. Both endpoints are local aiohttp sinks that
answer at once; one `hookyard-dispatcher` and one `hookyard-retrier` replica
deliver. Printed: how long A's burst took to drain and B's publish-to-receipt
p50/p99 while it did (issue 13 §2 asks for B's p99 under 2 s with 20,000).

    python bench/burst_fairness.py [--burst 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from dispatch_bench import publish, setup_tenant, sink_count, sink_stats  # noqa: E402
from ingest_bench import BIN, free_port, local_infra, percentile, stop, wait_http  # noqa: E402


async def trickle(amqp_url: str, tenant_id: str, until) -> int:
    """One event of B every 100 ms until `until()` is true; returns how many."""
    from hookyard_common.broker.connection import Broker
    from hookyard_common.schemas import Event

    broker = await Broker.connect(amqp_url, (1_000,))
    sent = 0
    try:
        while not until():
            event = Event(tenant_id=tenant_id, event_type="order.created", payload={"n": sent, "sent": time.time()})
            await broker.publish(event.to_bytes(), routing_key=f"{tenant_id}.order.created")
            sent += 1
            await asyncio.sleep(0.1)
    finally:
        await broker.close()
    return sent


def measure(args, amqp_url: str, mongo_uri: str, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("a", "b")}
    sinks = [
        subprocess.Popen(
            [sys.executable, str(HERE.parent / "dispatch_bench.py"), "sink", "--port", str(port)],
            start_new_session=True,
        )
        for port in ports.values()
    ]
    services: list[subprocess.Popen] = []
    try:
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/stats")
        database = "hookyard_burst_fairness"
        tenants = {
            name: setup_tenant(amqp_url, mongo_uri, database, f"http://127.0.0.1:{port}/hook", lane=True)
            for name, port in ports.items()
        }
        env = {
            **os.environ,
            "AMQP_URL": amqp_url,
            "MONGO_URI": mongo_uri,
            "HOOKYARD_MONGO_DB": database,
            "HOOKYARD_DELIVERY_ALLOWED_CIDRS": '["127.0.0.0/8"]',
            "HOOKYARD_LOG_LEVEL": "WARNING",
            "HOOKYARD_DISPATCHER_PORT": str(free_port()),
            "HOOKYARD_RETRIER_PORT": str(free_port()),
        }
        # The services hold their own copies of the log's descriptor: ours closes once they run.
        with open(tmp_path / "services.log", "wb") as log:
            for name in ("hookyard-dispatcher", "hookyard-retrier"):
                services.append(
                    subprocess.Popen(
                        [str(BIN / name)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        time.sleep(2.0)  # connected and consuming
        started = time.time()
        asyncio.run(publish(amqp_url, tenants["a"], args.burst))
        published = time.time()
        sent = asyncio.run(trickle(amqp_url, tenants["b"], lambda: sink_count(ports["a"]) >= args.burst))
        drained = time.time()
        time.sleep(1.0)  # B's last events
        b = [received - sent_at for sent_at, received in sink_stats(ports["b"])]
    finally:
        for process in (*services, *sinks):
            stop(process)
    print(
        f"\nBurst fairness: tenant A published {args.burst} events in {published - started:.1f} s; "
        f"drained {drained - started:.1f} s after the burst began"
    )
    print(
        f"tenant B: {sent} single events sent while it drained, {len(b)} delivered; "
        f"p50 {percentile(b, 0.5) * 1000:.0f} ms, p99 {percentile(b, 0.99) * 1000:.0f} ms (target p99 < 2000 ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=20_000)
    args = parser.parse_args()
    with local_infra("burst-fairness", {}) as (amqp_url, mongo_uri, tmp_path):
        measure(args, amqp_url, mongo_uri, tmp_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
