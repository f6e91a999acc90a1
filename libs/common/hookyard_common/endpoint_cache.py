"""A tenant's endpoints, cached per replica for the dispatcher and the retrier."""

from __future__ import annotations

from .cache import RefreshingCache
from .endpoints import Endpoint
from .store import Store

COLLECTION = "endpoints"


class EndpointCache(RefreshingCache[str, list[Endpoint]]):
    def __init__(self, store: Store, ttl_seconds: float):
        async def load(tenant_id: str) -> list[Endpoint]:
            docs = await store[COLLECTION].find({"tenant_id": tenant_id}).to_list()
            return [Endpoint.model_validate(doc) for doc in docs]

        super().__init__(load, ttl_seconds)

    async def find(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        return next((e for e in await self.get(tenant_id) if e.id == endpoint_id), None)
