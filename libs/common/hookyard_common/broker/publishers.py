"""Who published an event onto `hookyard.events`, and so what it may carry.

Tenants may publish straight onto the broker, so the dispatcher believes no
claim a body makes about where it came from. RabbitMQ vouches for one fact:
a message's `user_id` property, when set, is the user its connection logged
in as (the broker closes the channel otherwise, unless that user is tagged
`impersonator`, which no tenant account is). Hookyard's services set it on
all they publish, and a tenant account is named after its tenant id, so one
validated property tells a service from a tenant, and which tenant.

Chosen over an internal exchange tenants cannot write to: the routing key,
the listeners' bindings and the parked messages' re-drive keep one exchange,
and the same check names the tenant account as well as the services.

The fields only the ingest may set are a source's (`source_id`, `inbound`:
a provider's webhook, recorded and deduplicated as such) and the flag of
Hookyard's operational events; a tenant's event carrying any is refused.
"""

from __future__ import annotations

from collections.abc import Collection

from hookyard_common.operational_events import OPERATIONAL
from hookyard_common.schemas import Event


def ingest_only_fields(event: Event) -> list[str]:
    """The fields of `event` only Hookyard's services may set."""
    fields = [name for name in ("source_id", "inbound") if getattr(event, name) is not None]
    if OPERATIONAL in event.context:
        fields.append(f"context.{OPERATIONAL}")
    return fields


def refusal(event: Event, routing_key: str, user_id: str | None, service_users: Collection[str]) -> str | None:
    """Why `event`, published with `routing_key` by broker user `user_id`, is refused; None if it is not.

    A message without `user_id` is a tenant's publish on its routing key,
    which a tenant account's topic permission restricts to its own tenant.
    """
    if not routing_key.startswith(event.tenant_id + "."):
        return "tenant_id does not match the routing key"
    if user_id is not None and user_id in service_users:
        return None
    if user_id is not None and user_id != event.tenant_id:
        return f"broker user {user_id!r} may not publish as tenant {event.tenant_id!r}"
    if fields := ingest_only_fields(event):
        return f"only Hookyard's services may set {', '.join(fields)}"
    return None
