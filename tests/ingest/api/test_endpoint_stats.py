"""An endpoint's attempts over time (`GET /v1/endpoints/{id}/stats`), the console's chart, on a real platform."""

import asyncio

from helpers import endpoint, publish


async def stats_when(platform, key, endpoint_id, attempts: int, **query) -> dict:
    """The series once `attempts` attempts are recorded (the attempt log is written in batches)."""
    for _ in range(100):
        status, body, _ = await platform.call("GET", f"/v1/endpoints/{endpoint_id}/stats", token=key, params=query)
        assert status == 200, body
        if sum(b["attempts"] for b in body["buckets"]) >= attempts:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {attempts} attempts, got {body}")


async def test_the_series_counts_successes_failures_and_latency_in_their_slice(platform, receiver):
    key = await platform.tenant()
    url = receiver.behave("/s", [(200, 0), (200, 0), (500, 0)])
    made = await endpoint(platform, key, url, retry_policy={"schedule_seconds": []})
    for n in range(3):
        await publish(platform, key, "order.created", {"n": n})
        await receiver.wait_for("/s", n + 1)

    series = await stats_when(platform, key, made["id"], 3, hours="2", buckets="8")
    assert len(series["buckets"]) == 8 and series["bucket_seconds"] == 900
    *older, last = series["buckets"]
    assert all(b["attempts"] == 0 and b["success_rate"] is None for b in older)
    assert (last["attempts"], last["successful"], last["success_rate"]) == (3, 2, 0.6667)
    assert last["avg_latency_ms"] is not None and last["avg_latency_ms"] >= 0
    assert older[0]["start"] == series["since"]


async def test_another_tenants_endpoint_and_bad_slices_are_refused(platform, receiver):
    owner = await platform.tenant("owner")
    intruder = await platform.tenant("intruder")
    made = await endpoint(platform, owner, receiver.url("/own"))
    await publish(platform, owner, "order.created")
    await receiver.wait_for("/own", 1)
    await stats_when(platform, owner, made["id"], 1)

    status, body, _ = await platform.call("GET", f"/v1/endpoints/{made['id']}/stats", token=intruder)
    assert status == 404 and body["error"]["code"] == "unknown_endpoint"
    for query, code in (
        ({"buckets": "0"}, "invalid_buckets"),
        ({"buckets": "٣"}, "invalid_buckets"),
        ({"hours": "-1"}, "invalid_window"),
    ):
        status, body, _ = await platform.call("GET", f"/v1/endpoints/{made['id']}/stats", token=owner, params=query)
        assert status == 400 and body["error"]["code"] == code, body
