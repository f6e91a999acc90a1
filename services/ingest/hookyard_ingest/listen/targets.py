"""What a listener listens to, and the request its developer's app is sent for each event.

- A **source**: the provider's request as it arrived — method, query string,
  headers (less the credentials removed at the door) and the raw body — so
  the provider's own signature verifies in the developer's code.
- An **endpoint**: what that endpoint is sent. Events are chosen by the
  dispatcher's own rule (`routing.recipients`: event types, sources,
  `target_endpoint_id`, no bad news about itself) and the request is made by the shared `build_request`,
  signed with the endpoint's secrets and carrying the same `webhook-id` as
  the real delivery. Two deliberate differences: the endpoint's auth
  credential is left out (credentials are write-only in the API), and an
  inactive endpoint is mirrored too, so a developer can take a disabled
  endpoint's traffic on a laptop. The dispatcher does no work for any of it.

Each target also reads its catch-up from the logs, oldest first: a
source's from the message log; an endpoint's from the message log and the
log of tenants' own events, merged by time. Each target is re-read every
few seconds, so edits (filters, rotated secrets) apply and a deleted target
ends the listener.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from urllib.parse import urlsplit

from hookyard_common.delivery.attempt import build_request
from hookyard_common.delivery.endpoint_cache import COLLECTION as ENDPOINTS
from hookyard_common.delivery.endpoints import Endpoint
from hookyard_common.delivery.routing import first_task, recipients
from hookyard_common.listen_wire import Request
from hookyard_common.records import event_log, message_log
from hookyard_common.records.sources import COLLECTION as SOURCES
from hookyard_common.schemas import Event
from hookyard_common.store.client import Store


class TargetGone(Exception):
    """The source or endpoint was deleted while someone listened to it."""


async def _provider_messages(store: Store, query: dict) -> AsyncGenerator[tuple[datetime, Event], None]:
    erased = {"payload_erased_at": {"$exists": False}}  # nothing left to show
    records = store[message_log.COLLECTION].find({**query, **erased}).sort([("received_at", 1), ("_id", 1)])
    async for record in records:
        yield record["received_at"], message_log.event_from_record(record)


async def _oldest_first(*streams: AsyncIterator[tuple[datetime, Event]]) -> AsyncGenerator[Event, None]:
    """Merge streams that are each oldest first."""
    heads = [(await anext(stream, None), stream) for stream in streams]
    while waiting := [(head, index) for index, (head, _) in enumerate(heads) if head is not None]:
        (_, event), index = min(waiting, key=lambda entry: entry[0][0])  # the first stream wins a tie
        yield event
        stream = heads[index][1]
        heads[index] = (await anext(stream, None), stream)


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

    def logged(self, store: Store, since: datetime, until: datetime) -> AsyncGenerator[Event, None]:
        """The source's messages from the log, oldest first."""
        window = {"tenant_id": self.tenant_id, "source_id": self.id, "received_at": {"$gte": since, "$lt": until}}
        return _oldest_first(_provider_messages(store, window))

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
        # The dispatcher's own choice, as if the endpoint were active; signed without its credential.
        self._chooser = self.endpoint.model_copy(update={"active": True})
        self._signer = self.endpoint.model_copy(update={"auth": None})

    must_contain = None  # the endpoint's filter can select any of the tenant's events

    async def logged(self, store: Store, since: datetime, until: datetime) -> AsyncGenerator[Event, None]:
        """What the endpoint was sent from both logs, oldest first."""
        window = {"tenant_id": self.tenant_id, "received_at": {"$gte": since, "$lt": until}}
        if self.endpoint.source_ids:
            window["source_id"] = {"$in": self.endpoint.source_ids}
        own = event_log.logged_between(store, self.tenant_id, since, until)
        async for event in _oldest_first(_provider_messages(store, window), own):
            if self.chooses(event):
                yield event

    def chooses(self, event: Event) -> bool:
        return bool(recipients(event, [self._chooser]))

    def request_for(self, event: Event, now: datetime) -> Request | None:
        if not self.chooses(event):
            return None
        body, headers = build_request(self._signer, first_task(event, self.endpoint, now), now)
        return Request.of("POST", list(headers.items()), body)

    async def reload(self, store: Store) -> None:
        doc = await store[ENDPOINTS].find_one({"_id": self.id, "tenant_id": self.tenant_id})
        if doc is None:
            raise TargetGone("the endpoint was deleted")
        self._use(doc)
