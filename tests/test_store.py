"""The MongoDB access layer against a real MongoDB-compatible server."""

import pytest
from hookyard_common.store import INDEXES, Store
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError


async def test_indexes_are_ensured_and_idempotent(infra, mongo_db):
    store = await Store.connect(infra.mongo_uri, mongo_db)
    try:
        await store.ensure_indexes()
        await store.ensure_indexes()
        for collection, models in INDEXES.items():
            names = {index["name"] async for index in await store[collection].list_indexes()}
            assert {model.document["name"] for model in models} <= names
        await store["tenants"].insert_one({"api_key_hash": "abc"})
        with pytest.raises(DuplicateKeyError):
            await store["tenants"].insert_one({"api_key_hash": "abc"})
    finally:
        await store.close()


async def test_ping_fails_fast_when_the_server_is_unreachable():
    with pytest.raises(ServerSelectionTimeoutError):
        await Store.connect("mongodb://127.0.0.1:1/?directConnection=true", "x", timeout_seconds=0.5)
