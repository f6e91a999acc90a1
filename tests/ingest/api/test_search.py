"""Search (`GET /v1/events`, `GET /v1/received-events`) against the real stack: every filter,
the derived statuses, pages without gaps or repeats, bounds, bad values and tenant isolation."""

import asyncio
import re
from datetime import UTC, datetime

from helpers import endpoint, publish
from hookyard_common.delivery.event_filter import as_query, matches
from hookyard_common.store.pagination import encode_cursor


def test_wildcard_queries_agree_with_endpoint_filters():
    types = ["user", "user.created", "user.profile.updated", "order.failed", "order.payment.failed", "a.b", "x.y.z"]
    for pattern in ["*", "user.*", "order.*.failed", "a.b", "*.failed", "x.*.*", "user.created"]:
        query = as_query(pattern)
        for kind in types:
            found = query is None or (
                query == kind if isinstance(query, str) else bool(re.search(query["$regex"], kind))
            )
            assert found == matches(pattern, kind), (pattern, kind)


async def always_failing(platform, key, receiver, path, event_types, schedule) -> dict:
    """An endpoint answering 500 to every attempt, retried on `schedule` (seconds)."""
    url = receiver.behave(path, [(500, 0)])
    return await endpoint(platform, key, url, event_types=event_types, retry_policy={"schedule_seconds": schedule})


async def events(platform, key, path="/v1/events", **params) -> list[dict]:
    """Every item of a search, page after page, checking each page's shape."""
    found, cursor = [], None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        status, body, _ = await platform.call("GET", path, token=key, params=query)
        assert status == 200, body
        found += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("a search that never ends")


async def settled(platform, key, count: int, **params) -> list[dict]:
    for _ in range(200):
        found = await events(platform, key, **params)
        if len(found) == count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} events for {params}, have {len(found)}")


async def test_events_by_type_status_endpoint_and_time(platform, receiver):
    key = await platform.tenant("a")
    good = await endpoint(platform, key, receiver.behave("/ok", [(200, 0)]), event_types=["user.*"])
    flaky = await always_failing(platform, key, receiver, "/flaky", ["order.*"], [30])
    dead = await always_failing(platform, key, receiver, "/dead", ["invoice.*"], [0.05])
    delivered = await publish(platform, key, "user.created")
    failing = await publish(platform, key, "order.payment.failed")
    died = await publish(platform, key, "invoice.paid")
    quiet = await publish(platform, key, "nobody.listens")
    await receiver.wait_for("/dead", 2)
    assert [e["id"] for e in await settled(platform, key, 1, status="dead")] == [died]
    assert [e["id"] for e in await settled(platform, key, 1, status="failing")] == [failing]
    assert [e["id"] for e in await settled(platform, key, 1, status="delivered")] == [delivered]
    # The dead letter's operational event (message.attempt.exhausted) is the tenant's too, and pending;
    # it is published a moment after the dead letter is recorded.
    await settled(platform, key, 1, event_type="message.attempt.exhausted")
    pending = await events(platform, key, status="pending")
    assert [e["id"] for e in pending if not e["event_type"].startswith("message.")] == [quiet], pending
    everything = await events(platform, key, event_type="*")
    ours = [e for e in everything if not e["event_type"].startswith("message.")]
    assert [e["id"] for e in ours] == [quiet, died, failing, delivered]  # newest first
    assert {e["id"]: e["status"] for e in everything}[died] == "dead"

    assert [e["id"] for e in await events(platform, key, event_type="order.*.failed")] == [failing]
    assert [e["id"] for e in await events(platform, key, event_type="user.*")] == [delivered]
    assert [e["id"] for e in await events(platform, key, event_type="user")] == []
    assert len(await events(platform, key)) == len(everything) == 5
    assert [e["id"] for e in await events(platform, key, endpoint_id=dead["id"])] == [died]
    assert [e["id"] for e in await events(platform, key, endpoint_id=flaky["id"], status="failing")] == [failing]
    assert await events(platform, key, endpoint_id=good["id"], status="dead") == []

    middle = ours[2]["logged_at"]  # `failing`'s: since is inclusive, until exclusive
    since = await events(platform, key, since=middle, event_type="*.*")
    assert [e["id"] for e in since if e["id"] in (quiet, died, failing, delivered)] == [quiet, died, failing]
    assert [e["id"] for e in await events(platform, key, until=middle)] == [delivered]

    status, shown, _ = await platform.call("GET", f"/v1/events/{died}", token=key)
    assert status == 200 and shown["event_type"] == "invoice.paid" and shown["status"] == "dead"


async def test_pages_have_no_gaps_or_repeats_and_attempts_page_too(platform, receiver):
    key = await platform.tenant("a")
    await endpoint(
        platform,
        key,
        receiver.behave("/ok", [(200, 0)]),
        event_types=["tick.*"],
    )
    await always_failing(platform, key, receiver, "/down", ["tock"], [0.05, 0.05])
    tock = await publish(platform, key, "tock")
    published = [await publish(platform, key, f"tick.n{i}") for i in range(7)]
    await settled(platform, key, 7, status="delivered", event_type="tick.*")
    seen = []
    for limit in (1, 2, 3):
        paged = await events(platform, key, limit=str(limit), event_type="tick.*")
        seen.append([e["id"] for e in paged])
    assert seen[0] == seen[1] == seen[2] == list(reversed(published))

    await receiver.wait_for("/down", 3)
    await settled(platform, key, 1, status="dead", event_type="tock")
    for _ in range(100):  # the attempt log is written a moment after each attempt (buckets.py)
        status, body, _ = await platform.call("GET", f"/v1/events/{tock}/attempts", token=key)
        if len(body["data"]) == 3:
            break
        await asyncio.sleep(0.05)
    whole = body["data"]
    attempts, cursor = [], None
    for _ in range(5):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body, _ = await platform.call("GET", f"/v1/events/{tock}/attempts", token=key, params=params)
        assert status == 200 and len(body["data"]) <= 2, body
        attempts += body["data"]
        if (cursor := body["next_cursor"]) is None:
            break
    assert [a["attempt"] for a in attempts] == [1, 2, 3], (whole, attempts)
    assert attempts == whole
    assert len({a["id"] for a in attempts}) == 3 and {a["event_id"] for a in attempts} == {tock}


async def test_a_bounded_page_ends_early_with_a_cursor(start_platform, receiver):
    platform = await start_platform(search_scan_limit=10)
    key = await platform.tenant("a")
    await endpoint(platform, key, receiver.behave("/ok", [(200, 0)]), event_types=["rare"])
    rare = await publish(platform, key, "rare")
    for i in range(14):
        await publish(platform, key, f"common.n{i}")
    await settled(platform, key, 15)
    await settled(platform, key, 1, status="delivered")
    status, body, _ = await platform.call("GET", "/v1/events", token=key, params={"status": "delivered"})
    # The 14 newer events fill the first page's 10 reads: none delivered, a cursor to go on.
    assert status == 200 and body["data"] == [] and body["next_cursor"], body
    status, body, _ = await platform.call(
        "GET", "/v1/events", token=key, params={"status": "delivered", "cursor": body["next_cursor"]}
    )
    assert [e["id"] for e in body["data"]] == [rare] and body["next_cursor"] is None


async def test_received_events_by_source_type_and_status(platform, receiver):
    key = await platform.tenant("a")
    await endpoint(platform, key, receiver.behave("/ok", [(200, 0)]), event_types=["push"])
    one, two = await platform.source(key, "none"), await platform.source(key, "none")
    for source, kind in ((one, "push"), (two, "issue.opened"), (one, "issue.closed")):
        status, _, _ = await platform.call("POST", f"/in/{source['id']}", json={"type": kind})
        assert status == 200
    received = await settled_received(platform, key, 3)
    assert [m["source_id"] for m in received] == [one["id"], two["id"], one["id"]]
    by_source = await events(platform, key, "/v1/received-events", source_id=one["id"])
    assert [m["id"] for m in by_source] == [received[2]["id"], received[0]["id"]]  # newest first
    assert [m["source_id"] for m in await events(platform, key, "/v1/received-events", event_type="issue.*")] == [
        one["id"],
        two["id"],
    ]
    for _ in range(100):
        delivered = await events(platform, key, "/v1/received-events", status="delivered")
        if delivered:
            break
        await asyncio.sleep(0.05)
    assert [m["event_type"] for m in delivered] == ["push"]
    # The old name answers the same, and says where it went.
    status, body, headers = await platform.call("GET", "/v1/messages", token=key, params={"source_id": two["id"]})
    assert status == 200 and [m["source_id"] for m in body["data"]] == [two["id"]]
    assert headers["Deprecation"] == "true" and "/v1/received-events" in headers["Link"]


async def settled_received(platform, key, count):
    for _ in range(200):
        found = await events(platform, key, "/v1/received-events")
        if len(found) == count:
            return list(reversed(found))  # oldest first
        await asyncio.sleep(0.05)
    raise AssertionError("received events were not logged")


async def test_bad_filter_values_are_400s_naming_the_parameter(ingest):
    key = await ingest.tenant("a")
    cases = {
        "event_type": ("user..created", "invalid_event_type"),
        "status": ("lost", "invalid_status"),
        "endpoint_id": ("ep 1", "invalid_id"),
        "since": ("yesterday", "invalid_time"),
        "until": ("2026-01-01T00:00:00", "invalid_time"),
        "cursor": ("bm90LWEtY3Vyc29y", "invalid_cursor"),
        "limit": ("0", "invalid_limit"),
        "colour": ("red", "unknown_parameter"),
    }
    for path in ("/v1/events", "/v1/received-events"):
        for name, (value, code) in cases.items():
            status, body, _ = await ingest.call("GET", path, token=key, params={name: value})
            assert status == 400 and body["error"]["code"] == code and body["error"]["field"] == name, (
                path,
                name,
                body,
            )
    status, body, _ = await ingest.call("GET", "/v1/received-events", token=key, params={"source_id": "../x"})
    assert status == 400 and body["error"]["field"] == "source_id"
    window = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    status, body, _ = await ingest.call("GET", "/v1/events", token=key, params=window)
    assert status == 400 and body["error"]["code"] == "invalid_window"
    status, body, _ = await ingest.call("GET", "/v1/events?status=dead&status=failing", token=key)
    assert status == 400 and body["error"] == {**body["error"], "code": "repeated_parameter", "field": "status"}
    status, body, _ = await ingest.call("GET", "/v1/received-events/evt_nope", token=key)
    assert status == 404 and body["error"]["code"] == "unknown_event"
    # The deprecated name keeps its old code, and says so.
    status, body, headers = await ingest.call("GET", "/v1/messages/evt_nope", token=key)
    assert status == 404 and body["error"]["code"] == "unknown_message" and headers["Deprecation"] == "true"
    # A received-events cursor (a time and an event id) is not a position in the event log.
    theirs = encode_cursor(datetime.now(UTC), "evt_x")
    status, body, _ = await ingest.call("GET", "/v1/events", token=key, params={"cursor": theirs})
    assert status == 400 and body["error"]["code"] == "invalid_cursor", body
    status, body, _ = await ingest.call("GET", "/v1/events/evt_x/attempts", token=key, params={"cursor": "%%"})
    assert status == 400 and body["error"]["field"] == "cursor"


async def test_another_tenants_events_never_appear(platform, receiver):
    mine, theirs = await platform.tenant("a"), await platform.tenant("b")
    their_endpoint = await always_failing(platform, theirs, receiver, "/b", ["*"], [0.05])
    their_source = await platform.source(theirs, "none")
    their_event = await publish(platform, theirs, "user.created")
    status, _, _ = await platform.call("POST", f"/in/{their_source['id']}", json={"type": "user.created"})
    assert status == 200
    await receiver.wait_for("/b", 4)
    await settled(platform, theirs, 1, status="dead")
    mine_published = await publish(platform, mine, "user.created")
    await settled(platform, mine, 1)
    # (filters, whether my one event, no endpoint subscribing to it, matches them)
    attacks = [
        ({}, True),
        ({"event_type": "*"}, True),
        ({"event_type": "user.created"}, True),
        ({"status": "dead"}, False),
        ({"status": "pending"}, True),
        ({"endpoint_id": their_endpoint["id"]}, False),
        ({"since": "2000-01-01T00:00:00Z"}, True),
    ]
    for params, mine_matches in attacks:
        expected = [mine_published] if mine_matches else []
        assert [e["id"] for e in await events(platform, mine, **params)] == expected, params
        assert await events(platform, mine, "/v1/received-events", **params) == [], params
    assert await events(platform, mine, "/v1/received-events", source_id=their_source["id"]) == []
    status, _, _ = await platform.call("GET", f"/v1/events/{their_event}", token=mine)
    assert status == 404
    status, body, _ = await platform.call("GET", f"/v1/events/{their_event}/attempts", token=mine)
    assert status == 200 and body["data"] == []
    # Their own view is intact: the dead letter's event is theirs.
    assert [e["id"] for e in await events(platform, theirs, status="dead", event_type="user.*")] == [their_event]


async def test_the_old_names_link_is_a_header_whatever_the_path(ingest):
    key = await ingest.tenant("a")
    status, body, headers = await ingest.call("GET", "/v1/messages/evt%0Aset-cookie:%20x", token=key)
    assert status == 404 and body["error"]["code"] == "unknown_message"
    assert headers["Link"] == '</v1/received-events/evt%0Aset-cookie:%20x>; rel="successor-version"'
