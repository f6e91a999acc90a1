"""A rolling restart loses no accepted event (docs/operations.md, "Upgrading").

The four services run as real processes against the test broker and database,
delivering to a real HTTP receiver. While tenants' events flow in through
`POST /v1/events`, each service in turn is replaced the way a Kubernetes
rolling update does it: a new replica starts and becomes ready, the old one is
taken out of rotation and sent SIGTERM, and must exit cleanly within its
shutdown deadline. One endpoint fails every third request, so retries are in
flight through the retrier when it restarts. Afterwards every event the ingest
answered 2xx for has reached both endpoints (at least once).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import time

import aiohttp
import pytest

from helpers import IngestClient, start_service
from hookyard_cli.devstack import free_port

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")
MAX_EVENTS = 20_000  # the senders' bound; far more than the restarts take
FLAKY_EVERY = 3  # /flaky answers 503 to every third request


class Replica:
    def __init__(self, service: str, settings, log_dir, generation: int):
        self.service = service
        self.port = free_port()
        self.settings = settings.model_copy(update={f"{service}_port": self.port})
        directory = log_dir / f"{service}-{generation}"
        directory.mkdir()
        self.process: subprocess.Popen = start_service(service, self.settings, directory)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.service} exited with {self.process.returncode}"
            try:
                async with session.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.service} on :{self.port} did not become ready")

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM, then the exit code and how long the shutdown took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, 120)
        return code, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_rolling_restart_of_every_service_loses_no_accepted_event(settings, receiver, tmp_path):
    settings = settings.model_copy(
        update={
            "admin_token": "rolling-admin",
            "delivery_allowed_cidrs": ("127.0.0.0/8",),
            "retry_tiers_ms": (100, 500),
            "endpoint_cache_seconds": 0.5,
        }
    )
    receiver.behave("/flaky", ([(503, 0)] + [(200, 0)] * (FLAKY_EVERY - 1)) * MAX_EVENTS)
    generation = itertools.count()
    replicas = {service: Replica(service, settings, tmp_path, next(generation)) for service in SERVICES}
    accepted: set[int] = set()
    accepted_during: dict[str, int] = {}
    refused = 0
    try:
        async with aiohttp.ClientSession() as session:
            for replica in replicas.values():
                await replica.wait_ready(session)
            ingest_urls = [replicas["ingest"].url]  # what the load balancer routes to
            client = IngestClient(ingest_urls[0], settings, session)
            key = await client.tenant()
            for path, extra in (
                ("/ok", {}),
                ("/flaky", {"retry_policy": {"schedule_seconds": [0.3] * 20, "jitter": False}}),
            ):
                status, body, _ = await client.call(
                    "POST",
                    "/v1/endpoints",
                    token=key,
                    json={"url": receiver.url(path), "event_types": ["order.created"], **extra},
                )
                assert status == 201, body

            numbers = itertools.count()
            stop = asyncio.Event()

            async def sender(worker: int) -> None:
                nonlocal refused
                while not stop.is_set():
                    n = next(numbers)
                    if n >= MAX_EVENTS:
                        return
                    url = ingest_urls[n % len(ingest_urls)]
                    try:
                        async with session.post(
                            f"{url}/v1/events",
                            json={"event_type": "order.created", "payload": {"n": n}},
                            headers={"Authorization": f"Bearer {key}"},
                        ) as response:
                            if 200 <= response.status < 300:
                                accepted.add(n)
                            else:
                                refused += 1
                    except aiohttp.ClientError:
                        refused += 1  # not accepted, so the client would retry: not ours to deliver
                    await asyncio.sleep(0.01)

            senders = [asyncio.create_task(sender(w)) for w in range(4)]
            await asyncio.sleep(2)
            for service in SERVICES:
                before = len(accepted)
                old = replicas[service]
                new = replicas[service] = Replica(service, settings, tmp_path, next(generation))
                await new.wait_ready(session)
                if service == "ingest":  # the new pod is in the Service; the old one leaves it, then stops
                    ingest_urls.append(new.url)
                    ingest_urls.remove(old.url)
                    await asyncio.sleep(0.5)  # the preStop pause
                code, took = await old.terminate()
                assert code == 0, f"{service} did not shut down cleanly (exit {code})"
                assert took < settings.shutdown_deadline_seconds + 5, f"{service} took {took:.1f}s to stop"
                await asyncio.sleep(1.5)
                accepted_during[service] = len(accepted) - before
            stop.set()
            await asyncio.gather(*senders)

        def delivered(path: str) -> set[int]:
            """Events the endpoint answered 2xx for. The receiver answers its requests in arrival
            order from its plan, so the /flaky requests at positions 0, 3, 6, ... got the 503s."""
            requests = receiver.requests.get(path, [])
            failed = FLAKY_EVERY if path == "/flaky" else None
            return {json.loads(r["body"])["data"]["n"] for i, r in enumerate(requests) if failed is None or i % failed}

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if accepted <= delivered("/ok") and accepted <= delivered("/flaky"):
                break
            await asyncio.sleep(0.2)
        for service, count in accepted_during.items():
            assert count > 0, f"no event was accepted while the {service} restarted"
        assert len(accepted) >= 300
        for path in ("/ok", "/flaky"):
            lost = accepted - delivered(path)
            assert not lost, (
                f"{path}: {len(lost)} of {len(accepted)} accepted events never arrived, e.g. {sorted(lost)[:5]}"
            )
        assert len(receiver.requests["/flaky"]) > len(accepted), "the flaky endpoint saw no retries"
    finally:
        for replica in replicas.values():
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in replicas.values():
            try:
                replica.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                replica.process.kill()
