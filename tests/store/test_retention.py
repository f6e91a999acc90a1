"""Every collection's retention, read back from the real server's indexes."""

import re

import pytest
from pydantic import ValidationError

from helpers import REPO
from hookyard_common.core.settings import Settings
from hookyard_common.runtime.collections import COLLECTIONS
from hookyard_common.store import retention
from hookyard_common.store.client import Store

#: Distinct periods, so an index carrying another collection's setting is caught.
PERIODS = {
    "message_retention_days": 3.0,
    "dead_letter_retention_days": 4.0,
    "dead_letter_replay_retention_days": 5.0,
    "monitor_check_retention_days": 6.0,
    "monitor_history_retention_days": 32.5,
}


def documented_retention() -> dict[str, str]:
    """The `retention` column of docs/storage.md, by collection."""
    rows = re.findall(
        r"^\| `([a-z_]+)` \|(?:[^|\n]*\|){3}([^|\n]*)\|$", (REPO / "docs" / "storage.md").read_text(), re.M
    )
    return {name: text.strip() for name, text in rows}


async def ttl_indexes(store: Store, collection: str) -> dict[str, dict]:
    return {
        index["name"]: index async for index in await store[collection].list_indexes() if "expireAfterSeconds" in index
    }


@pytest.fixture
async def store(infra, mongo_db):
    store = await Store.connect(infra.mongo_uri, mongo_db)
    yield store
    await store.close()


async def test_each_collection_expires_by_its_setting_or_is_documented_as_kept(store):
    await store.ensure_indexes(COLLECTIONS, Settings(**PERIODS))
    documented = documented_retention()
    assert sorted(documented) == sorted(declared.collection for declared in COLLECTIONS)
    for declared in COLLECTIONS:
        found = await ttl_indexes(store, declared.collection)
        rule = declared.retention
        if rule is None:
            # No retention of its own: configuration kept on purpose, or expiring by its own date.
            assert found or documented[declared.collection] == "kept until deleted (configuration)", declared
            continue
        index = found[retention.INDEX_NAME]
        assert list(index["key"]) == [rule.field], declared.collection
        assert index["expireAfterSeconds"] == round(PERIODS[rule.setting] * 86_400), declared.collection
        assert f"`HOOKYARD_{rule.setting.upper()}`" in documented[declared.collection]
        assert f"`{rule.field}`" in documented[declared.collection]
        assert set(found) == {retention.INDEX_NAME}, f"{declared.collection}: one TTL index, the one the setting moves"


async def test_everything_recorded_expires(store):
    await store.ensure_indexes(COLLECTIONS, Settings())
    kept = {d.collection for d in COLLECTIONS if not await ttl_indexes(store, d.collection)}
    assert kept == {"tenants", "sources", "endpoints", "monitors", "monitor_ping_keys"}


async def test_a_changed_setting_moves_the_existing_index(store):
    # A database from an earlier release: the TTL on a per-record `expires_at`.
    await store["messages"].create_index("expires_at", expireAfterSeconds=0, name="retention_ttl")
    await store.ensure_indexes(COLLECTIONS, Settings(message_retention_days=30))
    await store["messages"].insert_one({"_id": "evt_kept", "tenant_id": "ten_a", "received_at": None})
    await store.ensure_indexes(COLLECTIONS, Settings(message_retention_days=2, monitor_history_retention_days=45))
    found = await ttl_indexes(store, "messages")
    assert set(found) == {retention.INDEX_NAME}  # the old index is gone, the new one moved in place
    assert found[retention.INDEX_NAME]["expireAfterSeconds"] == 2 * 86_400
    flips = await ttl_indexes(store, "monitor_flips")
    assert flips[retention.INDEX_NAME]["expireAfterSeconds"] == 45 * 86_400
    assert await store["messages"].count_documents({}) == 1  # changed in place: nothing rebuilt or lost


def test_a_retention_names_a_real_setting():
    with pytest.raises(ValueError, match="no_such_days"):
        retention.Retention("at", "no_such_days")


def test_flips_outlive_the_longest_uptime_window():
    with pytest.raises(ValidationError, match="monitor_history_retention_days"):
        Settings(monitor_history_retention_days=30)
