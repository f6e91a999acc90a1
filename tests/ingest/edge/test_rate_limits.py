"""Rate limits that mean what they say: scoped per source and per monitor, one ceiling per IP,
held across ingest processes (MongoDB leases), and failures that cost (almost) no queries."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections import Counter

import aiohttp
import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient, monitoring

from helpers import IngestClient, gunicorn_ingest, start_service
from hookyard_cli.devstack import free_port
from hookyard_common.records.rate_counters import COLLECTION
from hookyard_ingest.edge.errors import ApiError
from hookyard_ingest.edge.limits import FailureThrottle, SlidingWindowLimiter, client_key
from hookyard_ingest.edge.rate_leases import LeasedLimiter
from monitor_helpers import create_monitor, ping

JSON = {"Content-Type": "application/json"}
#: The per-client limit the multi-process tests share out, and the accuracy they must show.
LIMIT = 40
TOLERANCE = 0.10


class Commands(monitoring.CommandListener):
    """Counts the commands sent to one database, by (command, collection)."""

    def __init__(self, database: str):
        self.database = database
        self.counts: Counter = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.counts[(event.command_name, event.command.get(event.command_name))] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


# --- pure logic -----------------------------------------------------------------------------


def test_clients_are_counted_by_ipv4_address_or_ipv6_slash_64():
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")


def test_an_address_is_parsed_once_but_a_forwarded_giant_is_not_kept():
    client_key.cache_clear()
    assert client_key("198.51.100.4") == client_key("198.51.100.4")
    assert client_key.cache_info().hits == 1
    giant = "a" * 8000  # a trusted proxy's X-Forwarded-For, copied on
    assert client_key(giant) == giant
    assert client_key.cache_info().currsize == 1


def test_the_failure_throttle_refuses_past_its_budget_and_only_that_address():
    throttle = FailureThrottle(limit=3, window_seconds=60)
    for _ in range(3):
        throttle.check("198.51.100.1")
        throttle.failed("198.51.100.1")
    with pytest.raises(ApiError) as refused:
        throttle.check("198.51.100.1")
    assert refused.value.status == 429 and refused.value.code == "too_many_failures"
    assert int(refused.value.headers["Retry-After"]) >= 1
    throttle.check("198.51.100.2")  # another address has its own budget


def test_a_peek_does_not_count():
    limiter = SlidingWindowLimiter(60, clock=lambda: 30.0)
    for _ in range(5):
        assert limiter.blocked("k", 2) is None
    assert [limiter.hit("k", 2) is None for _ in range(3)] == [True, True, False]


# --- leases against a real MongoDB ----------------------------------------------------------


@pytest.fixture
async def counters(settings):
    commands = Commands(settings.mongo_db)
    client = AsyncMongoClient(settings.mongo_uri, event_listeners=[commands])
    yield client[settings.mongo_db][COLLECTION], commands
    await client.close()


def leased(collection, window: float = 3600, clock=time.time) -> LeasedLimiter:
    return LeasedLimiter(SlidingWindowLimiter(window), collection, timeout_seconds=2, clock=clock)


async def test_two_limiters_share_one_limit_with_far_fewer_round_trips_than_requests(counters):
    collection, commands = counters
    one, two = leased(collection), leased(collection)
    admitted = 0
    for n in range(300):
        admitted += await (one if n % 2 else two).hit("client", 100) is None
    assert 100 * (1 - TOLERANCE) <= admitted <= 100
    # Alone, each would have let its own 100 through: the limit is shared, not per process.
    assert (await leased(None).hit("client", 100)) is None
    round_trips = commands.counts[("findAndModify", COLLECTION)]
    assert 0 < round_trips < admitted / 2, commands.counts


async def test_the_window_slides_across_processes(counters):
    collection, _ = counters
    now = [3605.0]  # window 1, offset 5
    one, two = leased(collection, 10, lambda: now[0]), leased(collection, 10, lambda: now[0])
    assert sum([await one.hit("k", 100) is None for _ in range(120)]) == 100
    now[0] = 3615.0  # half-way into window 2: the previous 100 still weigh 50
    admitted = sum([await limiter.hit("k", 100) is None for _ in range(60) for limiter in (one, two)])
    assert 50 * (1 - TOLERANCE) <= admitted <= 50


class TurnsTheWindow(monitoring.CommandListener):
    """Moves a test's clock into the next window while a lease is being written, as a slow
    MongoDB does when a request arrives in the last moments of a window."""

    def __init__(self, now: list[float], to: float):
        self.now, self.to = now, to

    def started(self, event) -> None:
        pass

    def succeeded(self, event) -> None:
        if event.command_name == "findAndModify":
            self.now[0] = self.to

    def failed(self, event) -> None:
        pass


async def test_a_lease_taken_as_the_window_turns_is_spent_not_counted_twice(settings):
    now = [3609.9]  # 0.1 s before window 361 of 10 s begins
    client = AsyncMongoClient(settings.mongo_uri, event_listeners=[TurnsTheWindow(now, 3610.1)])
    try:
        collection = client[settings.mongo_db][COLLECTION]
        limiter = leased(collection, 10, lambda: now[0])
        key = f"turn-{secrets.token_hex(4)}"
        assert await limiter.hit(key, 2) is None
        # Counted once, in the window it was leased in; the new window has not been charged for it.
        assert [doc["taken"] async for doc in collection.find({"_id": {"$regex": f"^{key}@"}})] == [1]
        # 0.1 s into window 361 the sliding window holds 0.99 of one request: one more fits, then none.
        assert [await limiter.hit(key, 2) is None for _ in range(2)] == [True, False]
    finally:
        await client.close()


async def test_without_mongodb_the_local_limiter_answers_at_once_and_nothing_raises():
    # The client's own server selection would wait 30 s: the limiter's timeout must cut it short.
    nowhere = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false")
    try:
        limiter = LeasedLimiter(
            SlidingWindowLimiter(60), nowhere["db"][COLLECTION], timeout_seconds=0.2, fallback_seconds=60
        )
        unreachable = {"outcome": "unreachable"}
        before = REGISTRY.get_sample_value("hookyard_rate_limit_leases_total", unreachable) or 0
        started = time.monotonic()
        results = [await limiter.hit("k", 3) for _ in range(6)]
        assert [r is None for r in results] == [True, True, True, False, False, False]
        assert results[-1] > 0
        assert time.monotonic() - started < 10  # one attempt cut at 0.2 s, then counting alone
        assert REGISTRY.get_sample_value("hookyard_rate_limit_leases_total", unreachable) == before + 1  # asked once
    finally:
        await nowhere.close()


# --- scope, through a running ingest -------------------------------------------------------


async def test_per_ip_limits_are_per_source_and_per_monitor_under_one_total_ceiling(start_ingest):
    ingest = await start_ingest(rate_limit_per_ip=3, ping_rate_limit_per_ip=2, rate_limit_per_ip_total=14)
    key = await ingest.tenant()
    first, second = await ingest.source(key, "none"), await ingest.source(key, "none")
    for source in (first, second):  # one provider IP, two tenants' sources: each has its own 3
        statuses = [(await ingest.call("POST", f"/in/{source['id']}", headers=JSON, data=b"{}"))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
    status, body, headers = await ingest.call("POST", f"/in/{first['id']}", headers=JSON, data=b"{}")
    assert (status, body["error"]["code"], body["error"]["scope"], body["error"]["limit"]) == (
        429,
        "rate_limited",
        "ip",
        3,
    )
    monitors = [await create_monitor(ingest, key), await create_monitor(ingest, key)]
    assert [(await ping(ingest, m["token"]))[0] for m in monitors for _ in range(2)] == [200] * 4  # 2 per monitor
    status, body = await ping(ingest, monitors[0]["token"])  # 14th request from this IP: over its 2 here
    assert (status, body["error"]["scope"]) == (429, "ip")
    status, body = await ping(ingest, monitors[1]["token"])  # 15th: over the ceiling for all of the edge
    assert (status, body["error"]["scope"]) == (429, "ip total")


# --- failures are cheap ---------------------------------------------------------------------


async def test_unknown_ids_tokens_and_keys_cost_at_most_the_failure_budget_in_queries(start_ingest, settings):
    commands = Commands(settings.mongo_db)
    monitoring.register(commands)  # every client made from here on: the ingest's too
    budget = 10
    ingest = await start_ingest(
        failure_limit_per_ip=budget, negative_cache_seconds=60, trusted_proxies=("127.0.0.1/32",)
    )
    key = await ingest.tenant()
    known = await ingest.source(key, "none")

    def sender(n: int) -> dict:
        return {**JSON, "X-Forwarded-For": f"203.0.113.{n}"}

    async def flood(n: int, collection: str, request) -> list[int]:
        before = commands.counts[("find", collection)]
        statuses = [await request(i) for i in range(60)]
        assert commands.counts[("find", collection)] - before <= budget, (collection, commands.counts)
        return statuses

    async def random_source(i: int) -> int:
        path = f"/in/src_{secrets.token_urlsafe(18)}"
        status, body, headers = await ingest.call("POST", path, headers=sender(1), data=b"{}")
        assert status == 404 or (body["error"]["code"] == "too_many_failures" and int(headers["Retry-After"]) >= 1)
        return status

    assert await flood(1, "sources", random_source) == [404] * budget + [429] * (60 - budget)
    # A source already in memory still answers that address: a provider's shared IP is not shut out.
    assert (await ingest.call("POST", f"/in/{known['id']}", headers=sender(9), data=b"{}"))[0] == 200
    assert (await ingest.call("POST", f"/in/{known['id']}", headers=sender(1), data=b"{}"))[0] == 200

    gone = f"src_{secrets.token_urlsafe(18)}"  # a deleted source its provider keeps retrying

    async def same_unknown_source(i: int) -> int:
        return (await ingest.call("POST", f"/in/{gone}", headers=sender(2), data=b"{}"))[0]

    before = commands.counts[("find", "sources")]
    assert await flood(2, "sources", same_unknown_source) == [404] * 60
    assert commands.counts[("find", "sources")] - before == 1  # the negative cache answered the rest

    async def random_key(i: int) -> int:
        return (await ingest.call("GET", "/v1/sources", token=f"hy_{secrets.token_urlsafe(32)}", headers=sender(3)))[0]

    assert await flood(3, "tenants", random_key) == [401] * budget + [429] * (60 - budget)

    async def random_token(i: int) -> int:
        return (await ping(ingest, secrets.token_hex(32), headers=sender(4)))[0]

    assert await flood(4, "monitors", random_token) == [404] * budget + [429] * (60 - budget)


# --- one limit across processes -------------------------------------------------------------


async def send_alternating(bases: list[str], path: str, count: int) -> Counter:
    """`count` requests spread over `bases` in turn, eight at a time, each on a new connection
    (so gunicorn's workers share them): the statuses, and which base accepted how many.
    A worker still starting answers 503 before counting anything: that request is sent again."""
    outcome: Counter = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

        async def one(n: int) -> None:
            base = bases[n % len(bases)]
            while True:
                async with session.post(base + path, headers=JSON, data=b"{}") as response:
                    body = await response.json()
                if response.status != 503:
                    break
                assert body["error"]["code"] == "starting", body  # a worker still starting: retry, as told
                await asyncio.sleep(0.2)
            outcome[response.status] += 1
            if response.status == 200:
                outcome[base] += 1
            else:
                assert (response.status, body["error"]["code"]) == (429, "rate_limited"), body

        for start in range(0, count, 8):
            await asyncio.gather(*(one(n) for n in range(start, min(count, start + 8))))
    return outcome


def within_tolerance(accepted: int) -> bool:
    return LIMIT * (1 - TOLERANCE) <= accepted <= LIMIT * (1 + TOLERANCE)


@pytest.mark.slow
async def test_two_ingest_processes_refuse_at_the_one_configured_limit(settings, tmp_path):
    base = settings.model_copy(
        update={"admin_token": "limits-admin", "rate_limit_per_ip": LIMIT, "rate_limit_window_seconds": 3600}
    )
    configs = [base, base.model_copy(update={"ingest_port": free_port()})]
    processes = []
    for n, config in enumerate(configs):
        (tmp_path / str(n)).mkdir()  # a log each
        processes.append(start_service("ingest", config, tmp_path / str(n)))
    try:
        async with aiohttp.ClientSession() as session:
            clients = [IngestClient(f"http://127.0.0.1:{c.ingest_port}", c, session) for c in configs]
            for client in clients:
                await client.wait_ready(timeout=60)
            source = await clients[0].source(await clients[0].tenant(), "none")
        outcome = await send_alternating([c.base for c in clients], f"/in/{source['id']}", 2 * LIMIT)
        accepted = outcome[200]
        # Counted per process, each would have accepted its own LIMIT: 2 x LIMIT in all.
        assert within_tolerance(accepted), outcome
        assert all(outcome[c.base] > 0 for c in clients), outcome
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.slow
async def test_gunicorn_workers_refuse_at_the_one_configured_limit(settings, tmp_path):
    settings = settings.model_copy(
        update={"admin_token": "limits-admin", "rate_limit_per_ip": LIMIT, "rate_limit_window_seconds": 3600}
    )
    with gunicorn_ingest(settings, tmp_path, workers=3):
        async with aiohttp.ClientSession() as session:
            client = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", settings, session)
            await client.wait_ready(timeout=60)
            source = await client.source(await client.tenant(), "none")
        outcome = await send_alternating([client.base], f"/in/{source['id']}", 3 * LIMIT)
        assert within_tolerance(outcome[200]), outcome  # per worker it would be up to 3 x LIMIT
