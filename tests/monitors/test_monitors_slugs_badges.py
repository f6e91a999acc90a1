"""Pings by slug under a tenant's ping key, and status badges: each on its own secret, each
closed to other tenants and to the other secret, each replaced at once."""

from xml.etree import ElementTree

from hookyard_common.monitors.model import COLLECTION
from hookyard_common.store.client import Store
from monitor_helpers import create_monitor, listed, monitor, ping


async def ping_key(ingest, key: str) -> str:
    status, body, _ = await ingest.call("POST", "/v1/ping-key", token=key)
    assert status == 201, body
    assert body["ping_url_template"] == f"{ingest.base}/ping/{body['ping_key']}/{{slug}}"
    return body["ping_key"]


async def test_a_fleet_pings_by_slug_with_one_key_that_can_be_replaced(ingest):
    key = await ingest.tenant()
    status, body, _ = await ingest.call("GET", "/v1/ping-key", token=key)
    assert status == 404 and body["error"]["code"] == "no_ping_key"
    pk = await ping_key(ingest, key)
    status, shown, _ = await ingest.call("GET", "/v1/ping-key", token=key)
    assert status == 200 and shown["ping_key"] == pk and pk.startswith("pk_")
    backup = await create_monitor(ingest, key, name="backup", slug="db-backup")
    report = await create_monitor(ingest, key, name="report", slug="weekly_report")

    status, body = await ping(ingest, pk, "/db-backup")  # `/ping/{ping_key}/{slug}`
    assert status == 200 and body["monitor"]["id"] == backup["id"] and body["kind"] == "success"
    for path, kind, state in (("/weekly_report/start", "start", "new"), ("/weekly_report/0", "success", "up")):
        status, body = await ping(ingest, pk, path, method="POST")
        assert (status, body["monitor"]["id"], body["kind"], body["monitor"]["state"]) == (
            200,
            report["id"],
            kind,
            state,
        )
    assert body["run_seconds"] is not None
    status, body = await ping(ingest, pk, "/weekly_report/sideways")
    assert status == 400 and body["error"]["code"] == "invalid_status"
    for path in ("/no-such-job", "/no-such-job/start", "/DB-Backup", "/db-backup/fail/extra"):
        status, body = await ping(ingest, pk, path)
        assert status == 404, (path, body)

    replaced = await ping_key(ingest, key)  # the old key stops with this answer
    assert replaced != pk
    assert (await ping(ingest, pk, "/db-backup"))[0] == 404
    assert (await ping(ingest, replaced, "/db-backup"))[0] == 200
    # Renaming a slug moves its pings at once too.
    status, _, _ = await ingest.call("PATCH", f"/v1/monitors/{backup['id']}", token=key, json={"slug": "nightly"})
    assert status == 200
    assert (await ping(ingest, replaced, "/db-backup"))[0] == 404
    assert (await ping(ingest, replaced, "/nightly"))[0] == 200
    assert (await monitor(ingest, key, backup["id"]))["pings_received"] == 3


async def test_slugs_are_unique_per_tenant_and_well_formed(ingest):
    key, other = await ingest.tenant(), await ingest.tenant("other")
    first = await create_monitor(ingest, key, slug="backup")
    status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "again", "slug": "backup"})
    assert status == 409 and body["error"]["code"] == "slug_taken" and body["error"]["field"] == "slug"
    second = await create_monitor(ingest, key, slug="restore")
    status, body, _ = await ingest.call("PATCH", f"/v1/monitors/{second['id']}", token=key, json={"slug": "backup"})
    assert status == 409 and body["error"]["code"] == "slug_taken"
    await create_monitor(ingest, other, slug="backup")  # another tenant's namespace
    # Monitors without a slug do not collide with each other.
    await create_monitor(ingest, key)
    await create_monitor(ingest, key)
    for slug in ("Backup", "-x", "a/b", "x" * 101, "", "a b"):
        status, body, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "x", "slug": slug})
        assert status == 400 and body["error"]["field"] == "slug", (slug, body)
    assert (await monitor(ingest, key, first["id"]))["slug"] == "backup"


async def test_one_tenants_ping_key_cannot_ping_another_tenants_slug(ingest):
    attacker, victim = await ingest.tenant("attacker"), await ingest.tenant("victim")
    attacker_key = await ping_key(ingest, attacker)
    victim_key = await ping_key(ingest, victim)
    target = await create_monitor(ingest, victim, name="payroll", slug="payroll")
    for path in ("/payroll", "/payroll/start", "/payroll/fail", "/payroll/1"):
        status, body = await ping(ingest, attacker_key, path)
        assert status == 404 and body["error"]["code"] == "unknown_monitor", (path, body)
    # Nor can the victim's ping token be used as a ping key, nor its own key reach the attacker's view.
    status, body = await ping(ingest, target["token"], "/payroll")
    assert status == 400  # a token's second segment is a kind
    assert (await monitor(ingest, victim, target["id"]))["pings_received"] == 0
    assert (await monitor(ingest, victim, target["id"]))["state"] == "new"
    status, shown, _ = await ingest.call("GET", "/v1/ping-key", token=attacker)
    assert shown["ping_key"] == attacker_key != victim_key
    assert (await ping(ingest, victim_key, "/payroll"))[0] == 200


async def test_guessing_ping_keys_and_slugs_spends_the_failure_budget(start_ingest):
    ingest = await start_ingest(failure_limit_per_ip=5)
    key = await ingest.tenant()
    pk = await ping_key(ingest, key)
    await create_monitor(ingest, key, slug="job")
    statuses = [(await ping(ingest, pk, f"/guess-{n}"))[0] for n in range(7)]
    assert statuses[:5] == [404] * 5 and statuses[5:] == [429, 429]


async def test_a_badge_shows_the_state_on_its_own_key_and_a_new_key_kills_the_old(start_ingest):
    ingest = await start_ingest(monitor_cache_seconds=0)  # every fetch reads: the state at once
    key, other = await ingest.tenant(), await ingest.tenant("other")
    created = await create_monitor(ingest, key, name='<db> & "backup"')
    badge_key = created["badge_key"]
    assert len(badge_key) == 64 and badge_key != created["token"]
    assert created["badge_url"] == f"{ingest.base}/badge/{badge_key}.svg"

    status, body, headers = await ingest.call("GET", f"/badge/{badge_key}.json")
    assert status == 200 and body == {"status": "new", "label": '<db> & "backup"'}
    assert "no-cache" in headers["Cache-Control"]
    await ping(ingest, created["token"], "/fail")
    status, svg, headers = await ingest.call("GET", f"/badge/{badge_key}.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    drawn = ElementTree.fromstring(svg)  # well-formed: the name is escaped
    texts = [t.text for t in drawn.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ['<db> & "backup"', "down"] and 'fill="#e05d44"' in svg
    assert (await ingest.call("GET", f"/badge/{badge_key}.json"))[1]["status"] == "down"

    # The badge key cannot ping, and the token is no badge.
    assert (await ping(ingest, badge_key))[0] == 404
    assert (await ingest.call("GET", f"/badge/{created['token']}.svg"))[0] == 404
    # Another tenant cannot regenerate it; its owner can, and the old URL is dead at once.
    status, _, _ = await ingest.call("POST", f"/v1/monitors/{created['id']}/regenerate-badge-key", token=other)
    assert status == 404
    status, renewed, _ = await ingest.call("POST", f"/v1/monitors/{created['id']}/regenerate-badge-key", token=key)
    assert status == 200 and renewed["badge_key"] != badge_key and renewed["token"] == created["token"]
    status, body, _ = await ingest.call("GET", f"/badge/{badge_key}.svg")
    assert status == 404 and body["error"]["code"] == "unknown_badge"
    assert (await ingest.call("GET", f"/badge/{renewed['badge_key']}.json"))[1]["status"] == "down"
    assert (await listed(ingest, key, f"/v1/monitors/{created['id']}/checks", 1))[0]["kind"] == "fail"


async def test_a_badge_is_served_from_memory_and_a_replaced_key_forgotten_at_once(start_ingest):
    ingest = await start_ingest(monitor_cache_seconds=60)
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    url = f"/badge/{created['badge_key']}.json"
    assert (await ingest.call("GET", url))[1]["status"] == "new"
    await ping(ingest, created["token"], "/fail")
    # A flood of one badge costs no read per fetch: within the period it shows what was read.
    assert {(await ingest.call("GET", url))[1]["status"] for _ in range(20)} == {"new"}
    status, renewed, _ = await ingest.call("POST", f"/v1/monitors/{created['id']}/regenerate-badge-key", token=key)
    assert status == 200
    assert (await ingest.call("GET", url))[0] == 404  # this replica forgot the old key at once
    assert (await ingest.call("GET", f"/badge/{renewed['badge_key']}.json"))[1]["status"] == "down"


async def test_a_monitor_from_before_badges_gets_one_when_asked(ingest, settings):
    key = await ingest.tenant()
    created = await create_monitor(ingest, key)
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        await store[COLLECTION].update_one({"_id": created["id"]}, {"$unset": {"badge_key": ""}})
    finally:
        await store.close()
    shown = await monitor(ingest, key, created["id"])
    assert shown["badge_key"] is None and shown["badge_url"] is None
    status, renewed, _ = await ingest.call("POST", f"/v1/monitors/{created['id']}/regenerate-badge-key", token=key)
    assert status == 200 and (await ingest.call("GET", f"/badge/{renewed['badge_key']}.json"))[0] == 200
