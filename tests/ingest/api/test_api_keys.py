"""A tenant's API keys over real HTTP: made, listed, revoked and rotated; isolated between tenants."""

import asyncio

from hookyard_cli.devstack import free_port
from hookyard_common.records.api_keys import COLLECTION as API_KEYS
from hookyard_common.records.api_keys import hash_key
from hookyard_common.records.tenants import COLLECTION as TENANTS
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store


async def _keys(ingest, key: str) -> list[dict]:
    status, body, _ = await ingest.call("GET", "/v1/api-keys", token=key)
    assert status == 200, body
    return body["data"]


async def _make(ingest, key: str, name: str) -> dict:
    status, body, _ = await ingest.call("POST", "/v1/api-keys", token=key, json={"name": name})
    assert status == 201, body
    return body


async def _works(ingest, key: str) -> int:
    status, _, _ = await ingest.call("GET", "/v1/api-keys", token=key)
    return status


async def test_keys_are_shown_once_listed_by_prefix_and_revoked(ingest):
    first = await ingest.tenant()
    made = await _make(ingest, first, "ci")
    assert made["key"].startswith("hy_") and made["prefix"] == made["key"][3:11] and made["name"] == "ci"
    listed = await _keys(ingest, made["key"])
    assert sorted(k["name"] for k in listed) == ["ci", "default"]
    assert all(set(k) == {"id", "name", "prefix", "created_at", "last_used_at", "expires_at"} for k in listed)
    assert made["key"] not in str(listed) and hash_key(made["key"]) not in str(listed)

    status, _, _ = await ingest.call("DELETE", f"/v1/api-keys/{made['id']}", token=first)
    assert status == 204
    status, body, _ = await ingest.call("GET", "/v1/api-keys", token=made["key"])
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert [k["name"] for k in await _keys(ingest, first)] == ["default"]
    # The last working key cannot go: the tenant would be locked out.
    (default,) = await _keys(ingest, first)
    status, body, _ = await ingest.call("DELETE", f"/v1/api-keys/{default['id']}", token=first)
    assert status == 409 and body["error"]["code"] == "last_api_key"
    assert await _works(ingest, first) == 200


async def test_rotation_overlaps_then_the_old_key_expires(ingest):
    old = await ingest.tenant()
    (default,) = await _keys(ingest, old)
    status, rotated, _ = await ingest.call(
        "POST", f"/v1/api-keys/{default['id']}/rotate", token=old, json={"expire_in_seconds": 1}
    )
    assert status == 201 and rotated["name"] == "default" and rotated["key"] != old
    assert await _works(ingest, old) == 200 and await _works(ingest, rotated["key"]) == 200
    (shown_old,) = [k for k in await _keys(ingest, old) if k["id"] == default["id"]]
    assert shown_old["expires_at"] is not None
    await asyncio.sleep(1.2)
    assert await _works(ingest, old) == 401
    assert [k["id"] for k in await _keys(ingest, rotated["key"])] == [rotated["id"]]
    # An expired key can be neither rotated again nor revoked.
    status, body, _ = await ingest.call("POST", f"/v1/api-keys/{default['id']}/rotate", token=rotated["key"])
    assert status == 404 and body["error"]["code"] == "unknown_api_key"


async def test_last_used_is_recorded_behind_the_answer(ingest):
    key = await ingest.tenant()
    for _ in range(5):
        assert await _works(ingest, key) == 200
    for _ in range(50):
        (shown,) = await _keys(ingest, key)
        if shown["last_used_at"]:
            break
        await asyncio.sleep(0.05)
    assert shown["last_used_at"] is not None


async def test_bad_key_requests_are_named(ingest):
    key = await ingest.tenant()
    (default,) = await _keys(ingest, key)
    cases = [
        ("POST", "/v1/api-keys", {"name": ""}, 400, "invalid_request"),
        ("POST", "/v1/api-keys", {"name": "x", "key": "hy_mine"}, 400, "invalid_request"),
        ("POST", f"/v1/api-keys/{default['id']}/rotate", {"expire_in_seconds": -1}, 400, "invalid_request"),
        ("POST", f"/v1/api-keys/{default['id']}/rotate", {"expire_in_seconds": 10**9}, 400, "invalid_request"),
        ("DELETE", "/v1/api-keys/" + "k" * 5000, None, 404, "unknown_api_key"),
        ("POST", "/v1/api-keys/key_nope/rotate", {}, 404, "unknown_api_key"),
    ]
    for method, path, body, status, code in cases:
        got, answer, _ = await ingest.call(method, path, token=key, json=body)
        assert (got, answer["error"]["code"]) == (status, code), (path, answer)
    status, body, _ = await ingest.call("GET", "/v1/api-keys", params={"limt": "2"}, token=key)
    assert status == 400 and body["error"]["field"] == "limt"


async def test_another_tenant_cannot_list_revoke_or_rotate_my_keys(ingest):
    mine = await ingest.tenant("mine")
    extra = await _make(ingest, mine, "deploy")
    theirs = await ingest.tenant("attacker")
    assert [k["name"] for k in await _keys(ingest, theirs)] == ["default"]
    for method, path in (("DELETE", f"/v1/api-keys/{extra['id']}"), ("POST", f"/v1/api-keys/{extra['id']}/rotate")):
        status, body, _ = await ingest.call(method, path, token=theirs, json={})
        assert status == 404 and body["error"]["code"] == "unknown_api_key"
    assert await _works(ingest, extra["key"]) == 200
    assert sorted(k["name"] for k in await _keys(ingest, mine)) == ["default", "deploy"]


async def test_a_revoked_key_is_refused_by_another_replica_within_the_cache_time(start_ingest):
    one = await start_ingest(api_key_cache_seconds=0.5)
    two = await start_ingest(api_key_cache_seconds=0.5, ingest_port=free_port())
    key = await one.tenant()
    made = await _make(one, key, "shared")
    assert await _works(two, made["key"]) == 200  # now in replica two's cache
    status, _, _ = await one.call("DELETE", f"/v1/api-keys/{made['id']}", token=key)
    assert status == 204 and await _works(one, made["key"]) == 401
    await asyncio.sleep(0.6)
    assert await _works(two, made["key"]) == 401


async def test_a_tenant_from_before_keeps_its_key(ingest, settings):
    store = await Store.connect(settings.mongo_uri, settings.mongo_db)
    try:
        await store[TENANTS].insert_one(
            {"_id": "ten_legacy", "name": "old", "api_key_hash": hash_key("hy_legacy"), "created_at": utcnow()}
        )
        assert [k["name"] for k in await _keys(ingest, "hy_legacy")] == ["default"]
        assert "api_key_hash" not in await store[TENANTS].find_one({"_id": "ten_legacy"})
        assert (await store[API_KEYS].find_one({"key_hash": hash_key("hy_legacy")}))["tenant_id"] == "ten_legacy"
        assert await _works(ingest, "hy_legacy") == 200
    finally:
        await store.close()
