"""How long a collection's documents are kept: one TTL index on a date field, its period a setting.

MongoDB's TTL monitor deletes a document once its date field is older than
the index's `expireAfterSeconds`. The period lives on the index, not in each
document (an `expires_at` written with the record would keep the period it
was written with), so changing the setting changes the index in place
(`collMod`) on the next start and applies to every document already stored.
A document whose field is missing or not a date (an open incident's
`resolved_at: null`) is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from hookyard_common.core.settings import Settings

#: The TTL index's name in every collection that has a retention.
INDEX_NAME = "retention"


@dataclass(frozen=True)
class Retention:
    """Documents go `HOOKYARD_<SETTING>` days after their `field`."""

    field: str
    #: The name of the `Settings` field (in days) that sets the period.
    setting: str

    def __post_init__(self) -> None:
        if self.setting not in Settings.model_fields:
            raise ValueError(f"no setting {self.setting!r} for the retention of {self.field!r}")

    def seconds(self, settings: Settings) -> int:
        return max(1, round(getattr(settings, self.setting) * 86_400))

    def index(self, settings: Settings) -> IndexModel:
        return IndexModel([(self.field, ASCENDING)], expireAfterSeconds=self.seconds(settings), name=INDEX_NAME)


async def ensure(collection: AsyncCollection, retention: Retention, settings: Settings) -> None:
    """Create the TTL index, or move its period to the setting's (creating it with another would conflict)."""
    seconds = retention.seconds(settings)
    existing = {index["name"]: index async for index in await collection.list_indexes()}
    if INDEX_NAME not in existing:
        await collection.create_indexes([retention.index(settings)])
    elif existing[INDEX_NAME].get("expireAfterSeconds") != seconds:
        await collection.database.command(
            {"collMod": collection.name, "index": {"name": INDEX_NAME, "expireAfterSeconds": seconds}}
        )
