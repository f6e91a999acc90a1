"""A deleted source is refused at once by the replica that deleted it, and by every other ingest
replica within HOOKYARD_SOURCE_CACHE_SECONDS (each caches the sources it served that long)."""

import asyncio
import time

from hookyard_cli.devstack import free_port

CACHE_SECONDS = 1.0
SLACK_SECONDS = 0.5  # one refreshing read, and this machine's load


async def send(replica, source_id: str) -> tuple[int, dict | str]:
    status, answer, _ = await replica.call(
        "POST", f"/in/{source_id}", headers={"Content-Type": "application/json"}, data=b'{"type": "a"}'
    )
    return status, answer


async def test_a_deleted_source_is_refused_by_every_replica_within_the_bound(start_ingest):
    deleting = await start_ingest(source_cache_seconds=CACHE_SECONDS)
    other = await start_ingest(source_cache_seconds=CACHE_SECONDS, ingest_port=free_port())
    key = await deleting.tenant()
    source = await deleting.source(key, "none")
    for replica in (deleting, other):  # each now holds the source in its cache
        assert (await send(replica, source["id"]))[0] == 200

    status, _, _ = await deleting.call("DELETE", f"/v1/sources/{source['id']}", token=key)
    deleted_at = time.monotonic()
    assert status == 204
    status, answer = await send(deleting, source["id"])
    assert status == 404 and answer["error"]["code"] == "unknown_source", "the deleting replica still accepts"
    while (await send(other, source["id"]))[0] == 200:
        assert time.monotonic() - deleted_at < CACHE_SECONDS + SLACK_SECONDS, "the other replica still accepts"
        await asyncio.sleep(0.05)
    status, answer = await send(other, source["id"])
    assert status == 404 and answer["error"]["code"] == "unknown_source"
