"""The per-replica cache: stale entries served only within their bound, invalidation wins over a read.

Its time is a clock the test moves (`clock.advance`), so "expired, within the stale bound"
is exactly that however busy the machine; the event loop keeps real time.
"""

import asyncio
import types

import pytest

from helpers import eventually
from hookyard_common.core import cache as cache_module
from hookyard_common.core.cache import RefreshingCache


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(cache_module, "time", types.SimpleNamespace(monotonic=moved.monotonic))
    return moved


async def serves(cache: RefreshingCache, key: str, value) -> bool:
    return await cache.get(key) == value


class Source:
    def __init__(self):
        self.value = 1
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def load(self, key: str) -> int:
        self.reads += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        return value


async def test_an_entry_long_past_its_expiry_is_read_again_before_it_is_served(clock):
    source = Source()
    cache = RefreshingCache(source.load, ttl_seconds=0.05, stale_seconds=0.05)
    assert await cache.get("k") == 1
    source.value = 2
    clock.advance(0.07)  # expired, within the stale bound: served, refreshed behind
    assert await cache.get("k") == 1
    await eventually(lambda: serves(cache, "k", 2), timeout=5, what="the refresh behind the stale answer")
    assert source.reads == 2
    source.value = 3
    clock.advance(0.2)  # far past the bound: the get waits for the fresh value
    assert await cache.get("k") == 3


async def test_unbounded_staleness_serves_the_old_value_once(clock):
    source = Source()
    cache = RefreshingCache(source.load, ttl_seconds=0.01)
    await cache.get("k")
    source.value = 2
    clock.advance(0.05)
    assert await cache.get("k") == 1


async def test_a_read_started_before_an_invalidation_is_not_kept():
    source = Source()
    cache = RefreshingCache(source.load, ttl_seconds=60)
    source.gate = asyncio.Event()
    early = asyncio.ensure_future(cache.get("k"))  # reads value 1, held at the gate
    await eventually(lambda: source.reads == 1, timeout=5, what="the early read at the gate")
    source.value = 2
    cache.invalidate("k")
    source.gate.set()
    assert await early == 1
    assert await cache.get("k") == 2 and source.reads == 2


class Sparse(Source):
    """Knows only the keys in `present`; every other key is absent (None)."""

    def __init__(self, present: set[str]):
        super().__init__()
        self.present = present

    async def load(self, key: str) -> int | None:
        self.reads += 1
        return 1 if key in self.present else None


async def test_absent_keys_are_remembered_for_their_own_time_and_forgotten_on_invalidation(clock):
    source = Sparse(set())
    cache = RefreshingCache(source.load, ttl_seconds=60, absent_seconds=0.05)
    assert [await cache.get("gone") for _ in range(5)] == [None] * 5 and source.reads == 1
    source.present.add("gone")
    cache.invalidate("gone")  # created here: found at once
    assert await cache.get("gone") == 1 and source.reads == 2
    source.present.add("new")
    assert await cache.get("new") == 1
    clock.advance(0.07)
    assert await cache.get("other") is None and source.reads == 4
    clock.advance(0.07)  # past its short time, an absent key is asked again (never served stale)
    assert await cache.get("other") is None and source.reads == 5


async def test_a_flood_of_absent_keys_stays_bounded_and_keeps_the_present_entries():
    source = Sparse({"hot"})
    cache = RefreshingCache(source.load, ttl_seconds=60, max_entries=10, max_absent=100)
    assert await cache.get("hot") == 1
    for n in range(1_000):
        assert await cache.get(f"random-{n}") is None
    assert cache.holds("hot") and await cache.get("hot") == 1 and source.reads == 1_001
    assert sum(cache.holds(f"random-{n}") for n in range(1_000)) == 100  # the newest hundred
    assert cache.holds("random-999") and not cache.holds("random-0")


class Flaky(Source):
    """A source whose database can go away."""

    def __init__(self):
        super().__init__()
        self.down = False

    async def load(self, key: str) -> int:
        self.reads += 1
        if self.down:
            raise ConnectionError("the database is away")
        return self.value


async def test_keep_on_failure_serves_what_was_known_while_the_database_is_away_and_never_past_a_fresh_read(clock):
    source = Flaky()
    cache = RefreshingCache(source.load, ttl_seconds=0.05, stale_seconds=0, keep_on_failure=True)
    assert await cache.get("k") == 1
    source.down = True
    clock.advance(0.07)
    assert await cache.get("k") == 1, "the read failed: the known value holds"
    reads = source.reads
    assert await cache.get("k") == 1, "within the hold, the known value is served at once"
    await eventually(lambda: source.reads == reads + 1, timeout=5, what="a read tried behind it")
    source.down, source.value = False, 2
    clock.advance(cache_module.FAILURE_HOLD_SECONDS + 1)  # the hold has run out
    assert await cache.get("k") == 2, "once the database answers, its value is waited for and served"


async def test_without_keep_on_failure_an_expired_entry_is_never_served_when_its_read_fails(clock):
    source = Flaky()
    cache = RefreshingCache(source.load, ttl_seconds=0.05, stale_seconds=0)
    assert await cache.get("k") == 1
    source.down = True
    clock.advance(0.07)
    with pytest.raises(ConnectionError):
        await cache.get("k")  # an expired entry is not served when its read fails
