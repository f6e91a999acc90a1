"""The `rabbitmqctl` commands that create a tenant's restricted broker user (docs/broker.md#tenant-accounts).

The permissions are the public contract of `hookyard.events`: write to that
exchange only, with routing keys starting with the tenant id, and configure
or read nothing. The broker library owns them (`TenantAccount` in
`hookyard_common/broker/tenant_accounts.py`); the CLI states them again so it
installs without it, and `tests/broker/test_publishers.py` holds the two equal.
"""

from __future__ import annotations

import re
import shlex

EVENTS_EXCHANGE = "hookyard.events"
#: A pattern no resource name matches (RabbitMQ's regular expressions are anchored by the caret).
NOTHING = "^$"


def permissions() -> tuple[str, str, str]:
    """Configure, write and read on the vhost."""
    return NOTHING, f"^{re.escape(EVENTS_EXCHANGE)}$", NOTHING


def topic_permissions(tenant_id: str) -> tuple[str, str, str]:
    """Exchange, write and read routing keys."""
    return EVENTS_EXCHANGE, f"^{re.escape(tenant_id)}\\.", NOTHING


def rabbitmqctl(tenant_id: str, vhost: str) -> list[str]:
    """The commands an operator runs (`add_user` reads the password from stdin); the user is the tenant id."""
    user, on = shlex.quote(tenant_id), f"-p {shlex.quote(vhost)} {shlex.quote(tenant_id)}"
    return [
        f"rabbitmqctl add_user {user}",
        f"rabbitmqctl set_permissions {on} " + " ".join(map(shlex.quote, permissions())),
        f"rabbitmqctl set_topic_permissions {on} " + " ".join(map(shlex.quote, topic_permissions(tenant_id))),
    ]
