"""The MongoDB access layer against a real MongoDB-compatible server."""

import re

import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError

from helpers import REPO
from hookyard_common.core.settings import Settings
from hookyard_common.records import message_log
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.schemas import Event, Inbound
from hookyard_common.store.client import Store


async def test_indexes_are_ensured_and_idempotent(infra, mongo_db):
    store = await Store.connect(infra.mongo_uri, mongo_db)
    try:
        await store.ensure_indexes(COLLECTIONS, Settings())
        await store.ensure_indexes(COLLECTIONS, Settings())
        for declared in COLLECTIONS:
            names = {index["name"] async for index in await store[declared.collection].list_indexes()}
            assert {model.document["name"] for model in declared.models} <= names
        await store["api_keys"].insert_one({"key_hash": "abc"})
        with pytest.raises(DuplicateKeyError):
            await store["api_keys"].insert_one({"key_hash": "abc"})
        # Tenants without a legacy key hash do not collide on its sparse index.
        await store["tenants"].insert_many([{"name": "a"}, {"name": "b"}])
    finally:
        await store.close()


async def test_ping_fails_fast_when_the_server_is_unreachable():
    with pytest.raises(ServerSelectionTimeoutError):
        await Store.connect("mongodb://127.0.0.1:1/?directConnection=true", "x", timeout_seconds=0.5)


async def test_an_existing_database_loses_the_untenanted_dedup_index(infra, mongo_db):
    store = await Store.connect(infra.mongo_uri, mongo_db)
    try:
        # The index as an older release created it: unique per (source, dedup key), no tenant.
        old = IndexModel(
            [("source_id", ASCENDING), ("dedup_key", ASCENDING)],
            unique=True,
            partialFilterExpression={"dedup_key": {"$type": "string"}},
            name="source_dedup_key",
        )
        await store["messages"].create_indexes([old])
        await store.ensure_indexes(COLLECTIONS, Settings())
        await store.ensure_indexes(COLLECTIONS, Settings())  # the retired index is gone already: still fine
        names = {index["name"] async for index in await store["messages"].list_indexes()}
        assert "tenant_source_dedup_key" in names
        assert not set(message_log.INDEXES.retired) & names
    finally:
        await store.close()


def _from_source(tenant_id: str, dedup_key: str) -> Event:
    inbound = Inbound(
        provider="none",
        method="POST",
        url="http://x/in/src_shared",
        headers=[],
        body="{}",
        media_type="application/json",
        client_ip="127.0.0.1",
        signature_scheme="none",
        dedup_key=dedup_key,
    )
    return Event(tenant_id=tenant_id, event_type="a.b", source_id="src_shared", inbound=inbound)


async def test_a_dedup_key_claimed_by_one_tenant_is_still_fresh_for_another(infra, mongo_db):
    store = await Store.connect(infra.mongo_uri, mongo_db)
    try:
        await store.ensure_indexes(COLLECTIONS, Settings())
        assert await message_log.record(store, [_from_source("ten_a", "k-1")]) == [True]
        fresh = await message_log.record(store, [_from_source("ten_b", "k-1"), _from_source("ten_a", "k-1")])
        assert fresh == [True, False]  # another tenant's claim changes nothing; its own repeat is a duplicate
    finally:
        await store.close()


def test_each_collection_is_declared_once_and_documented():
    names = [declared.collection for declared in COLLECTIONS]
    assert len(names) == len(set(names))
    doc = (REPO / "docs" / "storage.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.MULTILINE)
    assert sorted(documented) == sorted(names)


def test_collection_names_are_never_written_as_strings_outside_their_owner():
    # A literal like store["tenants"] bypasses the owner's constant, and with it its indexes.
    literal = re.compile(r"""store\[\s*["']""")
    for root in ("libs", "services", "cli", "bench"):
        for path in (REPO / root).rglob("*.py"):
            assert not literal.search(path.read_text()), path
