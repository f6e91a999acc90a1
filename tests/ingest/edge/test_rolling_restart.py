"""A rolling restart loses no accepted event (docs/operations.md, "Upgrading").

The four services run as real processes against the test broker and database,
delivering to a real HTTP receiver. While tenants' events flow in through
`POST /v1/events`, each service in turn is replaced the way a Kubernetes
rolling update does it: a new replica starts and becomes ready, the old one is
sent SIGTERM, and must exit cleanly within its shutdown deadline. The ingest
replicas sit behind a load balancer that routes only to replicas whose
`/readyz` answers 200: the old ingest is sent SIGTERM while still in rotation,
so the drain is what moves traffic. Its readiness must go 503 while its port
still serves (HOOKYARD_SHUTDOWN_UNREADY_SECONDS), and no request may be
refused or dropped. One endpoint fails every third request, so retries are in
flight through the retrier when it restarts. Afterwards every event the ingest
answered 2xx for has reached both endpoints (at least once).

The senders are paced (SEND_EVERY), not as fast as the machine allows, so the
number of events, and the time their delivery takes, grows with the length of
the restarts only, never with the machine's speed.
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

from helpers import IngestClient, eventually, start_service
from hookyard_cli.devstack import free_port

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")
SENDERS = 4
SEND_EVERY = 0.1  # each sender's pace: 40 events a second in all
MAX_EVENTS = 4_000  # the senders' bound; more than the restarts take at that pace
FLAKY_EVERY = 3  # /flaky answers 503 to every third request
UNREADY_SECONDS = 2.0  # the old ingest serves this long with /readyz at 503
POLL_EVERY = 0.1  # the load balancer's readiness probe


class LoadBalancer:
    """Routes to the ingest replicas whose /readyz answered 200 at its last probe, as a
    Kubernetes Service or a polling load balancer does; remembers each replica's answers."""

    def __init__(self, session: aiohttp.ClientSession):
        self.session = session
        self.replicas: list[str] = []
        self.rotation: list[str] = []
        self.answers: dict[str, list[tuple[int, str | None]]] = {}

    async def probe_forever(self) -> None:
        while True:
            for url in list(self.replicas):
                status, reason = await self._probe(url)
                self.answers.setdefault(url, []).append((status, reason))
                if status == 200 and url not in self.rotation:
                    self.rotation.append(url)
                elif status != 200 and url in self.rotation:
                    self.rotation.remove(url)
            await asyncio.sleep(POLL_EVERY)

    async def _probe(self, url: str) -> tuple[int, str | None]:
        try:
            async with self.session.get(url + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status, (await response.json()).get("reason")
        except (aiohttp.ClientError, TimeoutError):
            return 0, "unreachable"


class Replica:
    def __init__(self, service: str, settings, log_dir, generation: int):
        self.service = service
        self.port = free_port()
        unready = {"shutdown_unready_seconds": UNREADY_SECONDS} if service == "ingest" else {}
        self.settings = settings.model_copy(update={f"{service}_port": self.port, **unready})
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
    refused: list[tuple[int, str]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for replica in replicas.values():
                await replica.wait_ready(session)
            balancer = LoadBalancer(session)
            balancer.replicas.append(replicas["ingest"].url)
            probing = asyncio.create_task(balancer.probe_forever())
            client = IngestClient(replicas["ingest"].url, settings, session)
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

            async def sender() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    n = next(numbers)
                    if n >= MAX_EVENTS:
                        return
                    if not balancer.rotation:  # nowhere to send: the event is not sent at all
                        refused.append((n, "no ready replica"))
                    else:
                        url = balancer.rotation[n % len(balancer.rotation)]
                        try:
                            async with session.post(
                                f"{url}/v1/events",
                                json={"event_type": "order.created", "payload": {"n": n}},
                                headers={"Authorization": f"Bearer {key}"},
                            ) as response:
                                if 200 <= response.status < 300:
                                    accepted.add(n)
                                else:
                                    refused.append((n, f"{url}: {response.status}"))
                        except aiohttp.ClientError as exc:
                            refused.append((n, f"{url}: {exc!r}"))
                    await asyncio.sleep(max(0.0, SEND_EVERY - (time.monotonic() - started)))

            senders = [asyncio.create_task(sender()) for _ in range(SENDERS)]
            await asyncio.sleep(2)
            for service in SERVICES:
                before = len(accepted)
                old = replicas[service]
                new = replicas[service] = Replica(service, settings, tmp_path, next(generation))
                await new.wait_ready(session)
                if service == "ingest":  # the new replica joins the rotation by its own readiness
                    balancer.replicas.append(new.url)
                    await eventually(
                        lambda url=new.url: url in balancer.rotation, timeout=10, what="the new ingest in rotation"
                    )
                code, took = await old.terminate()  # the old ingest still in rotation: the drain must move traffic
                assert code == 0, f"{service} did not shut down cleanly (exit {code})"
                assert took < settings.shutdown_deadline_seconds + UNREADY_SECONDS + 5, f"{service} took {took:.1f}s"
                if service == "ingest":
                    assert (503, "shutting down") in balancer.answers[old.url], balancer.answers[old.url][-10:]
                    balancer.replicas.remove(old.url)
                await asyncio.sleep(1.5)
                accepted_during[service] = len(accepted) - before
            stop.set()
            await asyncio.gather(*senders)
            probing.cancel()

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
        assert not refused, f"{len(refused)} requests refused during the restarts, e.g. {refused[:5]}"
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
