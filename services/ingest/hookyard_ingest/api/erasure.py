"""`DELETE /v1/messages/{id}/payload` (and `/v1/events/{id}/payload`): erase a payload, keep its metadata.

For data-protection requests: the body of a provider's webhook or a
tenant's event goes from every store that holds it (delivery/erasure.py),
while its id, times, type, attempts and dead letters stay, marked
`payload_erased_at`. Either route takes either kind of id, as
`/v1/messages/{id}/attempts` does. Erasing again answers the same
`payload_erased_at`; a message that must then be resent or replayed is
refused with `409 payload_erased`.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from hookyard_common.delivery import erasure
from hookyard_common.schemas import utcnow
from hookyard_common.store.client import Store
from hookyard_ingest.edge.auth import TENANT
from hookyard_ingest.edge.errors import ApiError


def payload_erased(at: datetime) -> ApiError:
    """The refusal of anything that would send an erased payload again."""
    return ApiError(
        409, "payload_erased", "this message's payload was erased; it cannot be sent again", erased_at=at.isoformat()
    )


class PayloadRoutes:
    def __init__(self, store: Store):
        self.store = store

    async def erase(self, request: web.Request) -> web.Response:
        tenant = request[TENANT]
        event_id = request.match_info["event_id"]
        done = await erasure.erase(self.store, tenant["_id"], event_id, utcnow())
        if done is None:
            raise ApiError(404, "unknown_event", "no such event (or past its retention)")
        return web.json_response(
            {
                "id": event_id,
                "kind": done.kind,
                "payload_erased_at": done.payload_erased_at.isoformat(),
                "dead_letters_erased": done.dead_letters,
            }
        )
