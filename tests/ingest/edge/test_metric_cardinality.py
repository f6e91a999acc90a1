"""/metrics keeps the same series however many sources and endpoints see traffic, and the
opt-in tenant labels stop at their cap (core/metric_labels.py)."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from helpers import endpoint, eventually, publish

MANY = 500
# Methods aiohttp's parser lets through (it refuses names it does not know) that no route has.
ODD_METHODS = ("PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PURGE", "SEARCH", "REPORT", "TRACE")
# Limits out of the way: deferrals and watch copies are bounded series too, but load decides
# whether they appear, and the test compares series before and after.
ROOMY = {
    "rate_limit_per_ip": 100_000,
    "rate_limit_per_ip_total": 100_000,
    "tenant_max_in_flight": 1_000,
    "delivery_hold_seconds": 30.0,
    "rate_limit_shared": False,  # no leases from a MongoDB slowed by the burst
}


async def series(client) -> set[tuple[str, frozenset]]:
    status, text, _ = await client.call("GET", "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def settled_series(client) -> set[tuple[str, frozenset]]:
    """The series once two scrapes 0.3 s apart agree: attempt records are written behind the
    deliveries, so a scrape right after them may not show their series yet."""
    scraped = [await series(client)]

    async def agrees() -> bool:
        await asyncio.sleep(0.3)
        scraped.append(await series(client))
        return scraped[-1] == scraped[-2]

    await eventually(agrees, timeout=15, interval=0, what="the metric series to settle")
    return scraped[-1]


async def gathered(count: int, make) -> list:
    """`make(n)` for n in range(count), 25 at a time."""
    gate = asyncio.Semaphore(25)

    async def one(n: int):
        async with gate:
            return await make(n)

    return await asyncio.gather(*(one(n) for n in range(count)))


async def traffic(platform, receiver, key: str, start: int, count: int) -> None:
    """`count` new sources and endpoints, one webhook to each source and one event fanned out to
    all endpoints so far, and requests with made-up methods and paths."""
    sources = await gathered(count, lambda n: platform.source(key, "none"))
    await gathered(count, lambda n: endpoint(platform, key, receiver.url(f"/e{start + n}"), event_types=["t.fan"]))

    async def webhook(n: int) -> None:
        status, body, _ = await platform.call("POST", f"/in/{sources[n]['id']}", json={"type": "ping"})
        assert status == 200, body

    async def made_up(n: int) -> None:
        method = ODD_METHODS[(start + n) % len(ODD_METHODS)]
        status, _, _ = await platform.call(method, f"/made/up/{start + n}")
        assert 400 <= status < 500

    await gathered(count, webhook)
    await gathered(min(count, 3 * len(ODD_METHODS)), made_up)
    await publish(platform, key, "t.fan")
    for n in range(start + count):
        await receiver.wait_for(f"/e{n}", 1, timeout=30)


async def test_series_stay_the_same_for_500_sources_and_endpoints(start_platform, receiver):
    platform = await start_platform(**ROOMY)
    key = await platform.tenant()
    await traffic(platform, receiver, key, 0, 1)
    before = await settled_series(platform)  # also past the first scrape, whose answer is counted from then on
    await traffic(platform, receiver, key, 1, MANY)
    after = await settled_series(platform)
    assert after - before == set(), sorted(after - before)[:20]
    assert len(after) == len(before)


async def test_tenant_labels_are_opt_in_and_capped(start_platform):
    platform = await start_platform(metrics_tenant_labels=2, **ROOMY)
    names = [f"labelled-{n}" for n in range(4)]
    for name in names:
        source = await platform.source(await platform.tenant(name), "none")
        status, body, _ = await platform.call("POST", f"/in/{source['id']}", json={"type": "ping"})
        assert status == 200, body
    status, listed, _ = await platform.call("GET", "/v1/tenants", token=platform.settings.admin_token)
    ids = {t["name"]: t["id"] for t in listed["data"]}
    tenants = [ids[name] for name in names]
    labelled = {
        dict(labels)["tenant"]
        for name, labels in await series(platform)
        if name == "hookyard_tenant_ingest_requests_total"
    }
    assert labelled & set(tenants) == set(tenants[:2]) and "other" in labelled
