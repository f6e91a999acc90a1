"""Helpers of the monitor tests: a movable clock, monitors over the API, in-process heartbeat
workers (the `heartbeats` fixture: import it), and a tap on monitor.* events."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import aio_pika
import pytest

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.core.settings import Settings
from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.monitors.model import COLLECTION
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_heartbeat.scanner import Scanner


class MovableClock:
    """Real time plus an offset the test moves forward: pings stamped by a real ingest
    and a heartbeat reading this clock agree, and the test never sleeps through an interval."""

    def __init__(self):
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


async def create_monitor(ingest, key: str, **fields) -> dict:
    status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "backup job", **fields})
    assert status == 201, body
    return body


async def ping(ingest, token: str, path: str = "", method: str = "GET", **kwargs) -> tuple[int, dict]:
    status, body, _ = await ingest.call(method, f"/ping/{token}{path}", **kwargs)
    return status, body


async def monitor(ingest, key: str, monitor_id: str) -> dict:
    status, body, _ = await ingest.call("GET", f"/v1/monitors/{monitor_id}", token=key)
    assert status == 200, body
    return body


async def listed(
    ingest, key: str, path: str, count: int, timeout: float = 10.0, settled=lambda data: True, **params
) -> list[dict]:
    """The `data` of a listing once it holds at least `count` items and `settled(data)` is true.

    Records are written behind the answer (the monitor's outbox), so a test waits for them.
    """
    for _ in range(int(timeout / 0.05)):
        status, body, _ = await ingest.call("GET", path, token=key, params=params)
        assert status == 200, body
        if len(body["data"]) >= count and settled(body["data"]):
            return body["data"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path}: expected {count} items, have {len(body['data'])}")


class EventTap:
    """A private queue bound to `hookyard.events` for `<tenant>.monitor.*`: every alert published."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self.events: list[dict] = []

    async def __aenter__(self) -> EventTap:
        self._connection = await aio_pika.connect(self.amqp_url)
        await topology.declare(self._connection, ())  # as the services declare it, whoever starts first
        channel = await self._connection.channel()
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        self._queue = await channel.declare_queue(exclusive=True)
        await self._queue.bind(exchange, routing_key="*.monitor.*")
        return self

    async def __aexit__(self, *_) -> None:
        await self._connection.close()

    async def take(self, expect: int, timeout: float = 15.0, settle: float = 0.5) -> list[dict]:
        """Every event so far, once at least `expect` arrived and `settle` s passed without more."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_until = None
        while loop.time() < deadline:
            message = await self._queue.get(fail=False, no_ack=True)
            if message is not None:
                self.events.append(json.loads(message.body))
                quiet_until = None
                continue
            if len(self.events) >= expect:
                quiet_until = quiet_until or loop.time() + settle
                if loop.time() >= quiet_until:
                    break
            await asyncio.sleep(0.02)
        return self.events

    def of(self, monitor_id: str) -> list[str]:
        return [e["event_type"] for e in self.events if e["payload"]["monitor_id"] == monitor_id]


class Heartbeat:
    """One in-process heartbeat worker on its own database and broker connections."""

    def __init__(self, store: Store, broker: Broker, clock, batch: int):
        self.store, self.broker = store, broker
        self.changes = MonitorChanges(store, broker, clock)
        self.scanner = Scanner(store, self.changes, batch=batch, clock=clock)

    async def scan(self):
        return await self.scanner.scan_once()

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until the pings' own settling is done: moving the clock past a lease
        while a change is being settled would make it look abandoned (see monitor_changes)."""
        for _ in range(int(timeout / 0.02)):
            if not await self.store[COLLECTION].count_documents({"outbox_at": {"$exists": True}}):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("changes still pending")


@pytest.fixture
async def heartbeats(settings):
    made: list[Heartbeat] = []

    async def make(clock, count: int = 1, batch: int = 500) -> list[Heartbeat]:
        for _ in range(count):
            store = await Store.connect(settings.mongo_uri, settings.mongo_db)
            await store.ensure_indexes(COLLECTIONS, Settings())
            broker = await Broker.connect(settings.amqp_url, settings.retry_tiers_ms)
            made.append(Heartbeat(store, broker, clock, batch))
        return made[-count:]

    yield make
    for heartbeat in made:
        await heartbeat.broker.close()
        await heartbeat.store.close()
