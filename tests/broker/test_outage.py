"""MongoDB away for a long outage while provider webhooks keep being accepted: none is parked, all arrive.

Time is compressed through settings: a MongoDB operation gives up after
0.2 s (`mongo_timeout_seconds`) instead of 5 s, and a held message waits at
most 1 s (`outage_retry_max_seconds`) instead of 30 s. Before holds, every
failed handling was requeued at once, so the 20-redelivery poison budget
(`topology.DELIVERY_LIMIT`) was spent in about 20 × 0.2 s = 4 s and the
events parked in `hookyard.invalid`; the outage here lasts 20 s, five times
that, and each event is held many times over.
"""

import asyncio
import json
import time

import aio_pika

from hookyard_cli.devstack import LocalMongo, free_port
from hookyard_common.broker import outages, topology

EVENTS = 300
OUTAGE_SECONDS = 20
MONGO_TIMEOUT_SECONDS = 0.2


def held_so_far() -> float:
    return outages.HELD.labels(topology.DISPATCH_QUEUE)._value.get()


async def invalid_count(amqp_url: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(topology.INVALID_QUEUE, passive=True)
        return queue.declaration_result.message_count


async def test_a_mongodb_outage_delays_accepted_webhooks_but_parks_none(start_platform, receiver, tmp_path):
    # Its own SecantusDB, to stop and start again on the same port and data.
    mongo = LocalMongo(tmp_path / "mongo", free_port(), tmp_path / "run")
    mongo.start()
    try:
        ingest = await start_platform(
            mongo_uri=mongo.uri,
            mongo_timeout_seconds=MONGO_TIMEOUT_SECONDS,
            outage_retry_max_seconds=1.0,
            rate_limit_per_ip=10_000,
            rate_limit_per_source=10_000,
            rate_limit_per_ip_total=10_000,
            # The tenant's lane takes as many at once as the shared queue did (each handling waits
            # out the MongoDB timeout), so every event is held several times within the outage.
            lane_prefetch=64,
            # A tenant's API key is read again every second: the outage outlasts it many times.
            api_key_cache_seconds=1.0,
        )
        key = await ingest.tenant()
        source = await ingest.source(key, "none")
        status, _, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": receiver.url("/hooks")})
        assert status == 201

        async def send(n: int) -> int:
            status, _, _ = await ingest.call("POST", f"/in/{source['id']}", json={"n": n})
            return status

        assert await send(-1) in (200, 202)
        await receiver.wait_for("/hooks", 1)
        held_before = held_so_far()

        await asyncio.to_thread(mongo.stop)
        statuses = await asyncio.gather(*(send(n) for n in range(EVENTS)))
        assert set(statuses) <= {200, 202}, "the ingest accepts webhooks while MongoDB is away"
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not receiver.requests["/hooks"][1:], "nothing can be delivered before it is logged"
        # The tenant API still publishes: the key known before the outage holds while MongoDB is away.
        own = {"event_type": "order.created", "payload": {"marker": "own-event-during-the-outage"}}
        status, body, _ = await ingest.call("POST", "/v1/events", token=key, json=own)
        assert status == 202, body
        held_during = held_so_far() - held_before
        await asyncio.to_thread(mongo.start)
        back_at = time.monotonic()

        def delivered() -> set[int]:
            return {json.loads(r["body"]).get("n") for r in receiver.requests["/hooks"]}

        for _ in range(300):
            if delivered() >= set(range(EVENTS)):
                break
            await asyncio.sleep(0.1)
        assert delivered() >= set(range(EVENTS))
        await receiver.wait_for("/hooks", EVENTS + 2)  # the webhooks, the first one, and the own event
        assert any("own-event-during-the-outage" in str(r["body"]) for r in receiver.requests["/hooks"])
        print(
            f"outage {OUTAGE_SECONDS} s: {held_during:.0f} holds; "
            f"all {EVENTS} delivered {time.monotonic() - back_at:.1f} s after MongoDB returned"
        )
        assert await invalid_count(ingest.settings.amqp_url) == 0
        # Each event was held again and again through the outage (not requeued, not parked).
        assert held_during >= 3 * EVENTS
    finally:
        await asyncio.to_thread(mongo.stop)
