"""Several broker addresses, for a RabbitMQ cluster: tried in turn on every (re)connect.

`AMQP_URL` may list the nodes of a cluster, comma-separated:
`amqp://user:pass@rabbit-0:5672/vhost,rabbit-1:5672,rabbit-2`. An entry after the
first may be a whole URL or just `host[:port]`, taking the scheme, credentials,
vhost and query of the first. Every entry must log in as the same user to the
same vhost: the user is what every publish carries as `user_id` (connection.py).

aio-pika's robust connection reconnects to the one URL it was given.
`FailoverConnection` moves on to the next address each time its connection
closes or an attempt fails (aio-pika reports both through `_on_connection_close`),
so a service whose node died or was cut off is back on a surviving node after
one reconnect interval, with its channels, queues and consumers restored.
A cut-off node is noticed through the AMQP heartbeat (`?heartbeat=N` in the
URL; RabbitMQ's default is 60 s) or a publish timing out, whichever is first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL


def addresses(amqp_url: str) -> tuple[URL, ...]:
    """The broker addresses `amqp_url` lists, in order; raises ValueError on a mixed list."""
    first, *others = [entry.strip() for entry in amqp_url.split(",") if entry.strip()] or [""]
    head = URL(first)
    listed = [head, *(_completed(other, head) for other in others)]
    for address in listed:
        if (address.user or "guest", address.path) != (head.user or "guest", head.path):
            raise ValueError("every address in AMQP_URL must name the same user and vhost")
    return tuple(listed)


def _completed(entry: str, first: URL) -> URL:
    """`host[:port]` as a whole URL, with the first address's scheme, login, vhost and query."""
    if "://" in entry:
        return URL(entry)
    authority = URL("//" + entry)
    return first.with_host(authority.host or "").with_port(authority.port)


def primary(amqp_url: str) -> URL:
    """The first address: the vhost and user every address shares, for what needs only one."""
    return addresses(amqp_url)[0]


class FailoverConnection(RobustConnection):
    """A robust connection that moves to the next address whenever it loses or fails one."""

    def __init__(self, urls: Sequence[URL], **kwargs: Any):
        super().__init__(urls[0], **kwargs)
        self._urls = tuple(urls)
        self._current = 0

    async def _on_connection_close(self, closing: Any) -> None:
        # aio-pika calls this when an open connection is lost and when an attempt fails.
        await super()._on_connection_close(closing)
        self._current = (self._current + 1) % len(self._urls)
        self.url = self._urls[self._current]


async def connect(amqp_url: str, timeout: float | None = None, **kwargs: Any) -> aio_pika.abc.AbstractRobustConnection:
    """A failover connection to the first address that answers, trying each in turn.

    aio-pika gives up on the first failed attempt (fail fast), so each address gets its
    own first try here; once connected, reconnects rotate through all of them."""
    urls = addresses(amqp_url)
    failure: BaseException | None = None
    for start in range(len(urls)):
        connection = FailoverConnection(urls[start:] + urls[:start], **kwargs)
        try:
            await connection.connect(timeout)
        except CONNECTION_EXCEPTIONS as error:  # a timeout too: an OSError
            failure = error
            await connection.close()
            continue
        return connection
    assert failure is not None
    raise failure
