"""MongoDB access on PyMongo's native async client, and the index migration every start-up runs.

A collection's indexes are declared beside its name and queries, in the
module that owns it (a `CollectionIndexes`); `runtime/collections.py` lists every
declaration. `ensure_indexes` creates what is missing and is a no-op for what
exists, so every replica may run it on every start. An index that is replaced
stays named in its declaration's `retired` and is dropped by name after its
successor is built: an existing database migrates on start-up, and a replica
still running the old code never finds the collection without either. A
collection with a `retention` also gets its TTL index, its period taken from
the settings (store/retention.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from hookyard_common.core.settings import Settings
from hookyard_common.store.retention import Retention, ensure

#: MongoDB's error code for dropping an index that does not exist (already migrated).
INDEX_NOT_FOUND = 27


@dataclass(frozen=True)
class CollectionIndexes:
    """One collection's indexes, as the module that owns the collection declares them."""

    collection: str
    models: tuple[IndexModel, ...]
    #: Names of indexes one of `models` replaced, dropped once their successor exists.
    retired: tuple[str, ...] = ()
    #: How long its documents are kept; None: until deleted (configuration, documented in docs/storage.md).
    retention: Retention | None = None


class Store:
    def __init__(self, client: AsyncMongoClient, database: str):
        self.client = client
        self.db: AsyncDatabase = client[database]

    @classmethod
    async def connect(cls, uri: str, database: str, *, timeout_seconds: float = 5.0) -> Store:
        client: AsyncMongoClient = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=int(timeout_seconds * 1000),
            appname="hookyard",
        )
        store = cls(client, database)
        try:
            await store.ping()
        except BaseException:
            await client.close()
            raise
        return store

    def __getitem__(self, collection: str) -> AsyncCollection:
        return self.db[collection]

    async def ping(self, timeout_seconds: float | None = None) -> None:
        await asyncio.wait_for(self.client.admin.command("ping"), timeout_seconds)

    async def ensure_indexes(self, declared: Iterable[CollectionIndexes], settings: Settings) -> None:
        for indexes in declared:
            collection = self.db[indexes.collection]
            if indexes.models:
                await collection.create_indexes(list(indexes.models))
            if indexes.retention is not None:
                await ensure(collection, indexes.retention, settings)
            for name in indexes.retired:
                await self._drop_index(indexes.collection, name)

    async def _drop_index(self, collection: str, name: str) -> None:
        try:
            await self.db[collection].drop_index(name)
        except OperationFailure as exc:
            if exc.code != INDEX_NOT_FOUND and "index not found" not in str(exc).lower():
                raise

    async def close(self) -> None:
        await self.client.close()
