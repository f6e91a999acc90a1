"""What a listener listens to, and the request its developer's app is sent for each event.

- A **source**: the provider's request as it arrived — method, query string,
  headers (less the credentials removed at the door) and the raw body — so
  the provider's own signature verifies in the developer's code.
- An **endpoint**: what that endpoint is sent. Events are chosen like the
  dispatcher's fan-out (event types, sources, `target_endpoint_id`, no bad
  news about itself) and the request is made by the shared `build_request`,
  signed with the endpoint's secrets and carrying the same `webhook-id` as
  the real delivery. Two deliberate differences: the endpoint's auth
  credential is left out (credentials are write-only in the API), and an
  inactive endpoint is mirrored too, so a developer can take a disabled
  endpoint's traffic on a laptop. The dispatcher does no work for any of it.

Each target is re-read every few seconds, so edits (filters, rotated
secrets) apply and a deleted target ends the listener.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from hookyard_common.delivery import build_request
from hookyard_common.endpoint_cache import COLLECTION as ENDPOINTS
from hookyard_common.endpoints import Endpoint
from hookyard_common.listen_wire import Request
from hookyard_common.schemas import Event
from hookyard_common.store import Store
from hookyard_common.worker import concerns_failing_endpoint, first_task

SOURCES = "sources"


class TargetGone(Exception):
    """The source or endpoint was deleted while someone listened to it."""


class SourceTarget:
    kind = "source"

    def __init__(self, doc: dict, refresh_seconds: float):
        self.id: str = doc["_id"]
        self.tenant_id: str = doc["tenant_id"]
        self.refresh_seconds = refresh_seconds

    @property
    def must_contain(self) -> bytes:
        """A source's events all name it."""
        return self.id.encode()

    def log_filter(self) -> dict:
        return {"source_id": self.id}

    def request_for(self, event: Event, now: datetime) -> Request | None:
        inbound = event.inbound
        if event.source_id != self.id or inbound is None:
            return None
        return Request(
            method=inbound.method,
            query=urlsplit(inbound.url).query,
            headers=inbound.headers,
            body=inbound.body,
            body_encoding=inbound.body_encoding,
        )

    async def reload(self, store: Store) -> None:
        if await store[SOURCES].find_one({"_id": self.id, "tenant_id": self.tenant_id}, {"_id": 1}) is None:
            raise TargetGone("the source was deleted")


class EndpointTarget:
    kind = "endpoint"

    def __init__(self, doc: dict, refresh_seconds: float):
        self.refresh_seconds = refresh_seconds
        self._use(doc)

    def _use(self, doc: dict) -> None:
        self.endpoint = Endpoint.model_validate(doc)
        self.id = self.endpoint.id
        self.tenant_id = self.endpoint.tenant_id
        self._signer = self.endpoint.model_copy(update={"auth": None})

    must_contain = None  # the endpoint's filter can select any of the tenant's events

    def log_filter(self) -> dict:
        # The log holds provider messages only; event types are matched as they are read.
        return {"source_id": {"$in": self.endpoint.source_ids}} if self.endpoint.source_ids else {}

    def selects(self, event: Event) -> bool:
        endpoint = self.endpoint
        if event.target_endpoint_id is not None:
            chosen = event.target_endpoint_id == endpoint.id
        else:
            chosen = endpoint.wants(event.event_type, event.source_id)
        return chosen and not concerns_failing_endpoint(event, endpoint.id)

    def request_for(self, event: Event, now: datetime) -> Request | None:
        if not self.selects(event):
            return None
        body, headers = build_request(self._signer, first_task(event, self.endpoint, now), now)
        return Request.of("POST", list(headers.items()), body)

    async def reload(self, store: Store) -> None:
        doc = await store[ENDPOINTS].find_one({"_id": self.id, "tenant_id": self.tenant_id})
        if doc is None:
            raise TargetGone("the endpoint was deleted")
        self._use(doc)
