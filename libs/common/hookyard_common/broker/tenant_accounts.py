"""The RabbitMQ permissions of a tenant's broker account, in one place.

A tenant publishing straight onto the broker logs in as a user named after
its tenant id, with no tags (so it cannot set another `user_id`, which
RabbitMQ checks). It may write to `hookyard.events` only, with routing keys
of its own tenant (a topic permission), and configure or read nothing: it
can neither declare, bind nor consume any queue, nor publish onto
`hookyard.changes`, the retry tiers or `hookyard.retry.due` (all reached
through exchanges it may not write to). The dispatcher then checks that the
routing key, the body and the `user_id` name the same tenant (publishers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hookyard_common.broker import topology

#: A pattern no resource name matches (RabbitMQ's regular expressions are anchored by the caret).
NOTHING = "^$"


@dataclass(frozen=True)
class TenantAccount:
    tenant_id: str

    @property
    def user(self) -> str:
        # The user is the tenant id: the `user_id` RabbitMQ validates then names the tenant.
        return self.tenant_id

    def permissions(self) -> dict[str, str]:
        """Configure, write and read patterns on the vhost (`PUT /api/permissions/{vhost}/{user}`)."""
        return {"configure": NOTHING, "write": f"^{re.escape(topology.EVENTS_EXCHANGE)}$", "read": NOTHING}

    def topic_permissions(self) -> dict[str, str]:
        """Routing keys it may use on the events exchange (`PUT /api/topic-permissions/{vhost}/{user}`)."""
        return {"exchange": topology.EVENTS_EXCHANGE, "write": f"^{re.escape(self.tenant_id)}\\.", "read": NOTHING}
