"""The connection to RabbitMQ: reconnecting, with confirmed publishing.

aio-pika's robust connection reconnects by itself (to the next node of a
cluster, failover.py) and restores channels, queues and consumers; `is_connected` tells the readiness probe whether that
is happening right now. Every publish waits for its confirm at most
`publish_timeout_seconds`: a broker that stops answering (a memory alarm
blocking publishers, a half-dead connection) raises `TimeoutError` to the
caller, which then does not report success (the ingest answers 503, a
consumer requeues its message) instead of hanging with the message in hand.
A publish the broker nacks fails the same way, and the next one goes on a
fresh channel (`_renew_publish_channel` says why).

Every publish carries the `user_id` the connection logged in as, which
RabbitMQ checks: it is how the dispatcher tells a service's event from a
tenant's (publishers.py). `service_users` are the broker users Hookyard's
services connect as: this one and `HOOKYARD_BROKER_SERVICE_USERS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.exceptions import DeliveryError, PublishError

from hookyard_common.broker import failover, topology
from hookyard_common.core import tracing

#: AMQP's delivery mode of a message written to disk by the broker.
PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


class Broker:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        publish_channel: AbstractChannel,
        publish_timeout_seconds: float,
        user: str,
        other_service_users: Iterable[str] = (),
        lanes: bool = True,
    ):
        self.connection = connection
        #: Whether tenant lanes are used on this broker (topology.declare).
        self.lanes = lanes
        self._lane_channel: AbstractChannel | None = None
        self.user = user
        self.service_users = frozenset({user, *other_service_users})
        self.publish_timeout_seconds = publish_timeout_seconds
        self._publish_channel = publish_channel
        self._renewing = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        amqp_url: str,
        retry_tiers_ms: tuple[int, ...],
        *,
        publish_timeout_seconds: float = 10.0,
        other_service_users: Iterable[str] = (),
    ) -> Broker:
        # Every address of a cluster in turn, on the first connect and each reconnect.
        connection = await failover.connect(amqp_url, reconnect_interval=1)
        try:
            # Confirms make `publish` return only once the broker has the message;
            # on_return_raises turns an unroutable message into an error, not a loss.
            lanes = await topology.declare(connection, retry_tiers_ms)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except BaseException:
            await connection.close()
            raise
        # aio-pika logs in as guest when the URL names no user.
        user = failover.primary(amqp_url).user or "guest"
        return cls(connection, channel, publish_timeout_seconds, user, other_service_users, lanes)

    @property
    def is_connected(self) -> bool:
        return not self.connection.is_closed and self.connection.connected.is_set()

    async def channel(self, prefetch: int) -> AbstractChannel:
        """A new channel for a consumer, with its own prefetch window."""
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def declare_lane(self, tenant_id: str) -> bool:
        """Declare the tenant's lane queue and its binding (idempotent); False when lanes are off.
        On a channel of its own, since a refused declare closes the channel that made it."""
        if not self.lanes:
            return False
        async with asyncio.timeout(self.publish_timeout_seconds):
            if self._lane_channel is None or self._lane_channel.is_closed:
                self._lane_channel = await self.connection.channel()
            await topology.declare_lane(self._lane_channel, tenant_id)
        return True

    async def transient_channel(self) -> AbstractChannel:
        """A channel that ends with the current connection instead of being restored after a
        reconnect: for work that must notice the loss (a listener's exclusive queue)."""
        channel = aio_pika.Channel(self.connection, publisher_confirms=False)
        await channel.initialize()
        return channel

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        exchange: str = topology.EVENTS_EXCHANGE,
        message_id: str | None = None,
        headers: dict | None = None,
        mandatory: bool = True,
        as_service: bool = True,
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm.

        Raises when the broker refuses it, cannot route it (unless not
        `mandatory`: a notice nobody listens to), or is unreachable: the
        caller must not report success in that case. Waits at most
        `publish_timeout_seconds` for the confirm, then raises TimeoutError.
        Not `as_service`, it carries no `user_id`: a copy of what a tenant
        published (a parked message re-driven) gains no service's trust.
        """
        headers = dict(headers or {})
        tracing.inject(headers)  # the consumer's span continues this trace
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id,
            headers=headers,
            user_id=self.user if as_service else None,
        )
        # One deadline around the whole publish, not aiormq's `timeout=`: that runs each of its
        # waits (channel lock, confirm) through `asyncio.wait_for`, a task and a timer apiece.
        channel = self._publish_channel
        try:
            async with asyncio.timeout(self.publish_timeout_seconds):
                if tracing.ENABLED:  # aio-pika's Exchange, which OpenTelemetry's instrumentation wraps in a span
                    target = (
                        await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
                    )
                    await target.publish(_message(body, properties), routing_key=routing_key, mandatory=mandatory)
                else:  # aiormq's channel under it: the same frames without aio-pika's Message (issue 18)
                    # aiormq's Channel has `wait`; its abstract class does not declare it.
                    underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
                    # `wait=False`: the confirm is what is awaited; waiting for the frame to be written
                    # too would hold the channel's lock over a drain of the socket for every publish.
                    await underlay.basic_publish(
                        body,
                        exchange=exchange,
                        routing_key=routing_key,
                        properties=properties,
                        mandatory=mandatory,
                        wait=False,
                    )
        except PublishError:  # returned as unroutable: nothing wrong with the channel
            raise
        except DeliveryError:
            await self._renew_publish_channel(channel)
            raise

    async def _renew_publish_channel(self, nacking: AbstractChannel) -> None:
        """Replace a channel the broker nacked a publish on. A channel whose first publish to a
        quorum queue came just as the queue's leader died is nacked for good by RabbitMQ 3.10
        (tests/broker/test_cluster_failover.py): the next publish goes on a fresh one."""
        async with self._renewing:
            if self._publish_channel is not nacking:
                return  # a concurrent nack renewed it already
            self._publish_channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        with contextlib.suppress(Exception):  # it may be closed already
            await nacking.close()

    async def publish_copy(
        self,
        body: bytes,
        *,
        user_id: str | None,
        exchange: str,
        routing_key: str,
        message_id: str | None,
        headers: dict,
    ) -> None:
        """Publish a copy of a consumed message (parked, held, sent back, re-driven). It is a
        service's only when the original was: a tenant's message never gains the trust of the
        service that copied it (publishers.py)."""
        await self.publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            message_id=message_id,
            headers=headers,
            as_service=user_id in self.service_users,
        )

    async def close(self) -> None:
        await self.connection.close()


def _message(body: bytes, properties: aiormq.spec.Basic.Properties) -> aio_pika.Message:
    """aio-pika's message with these properties, for the traced publish."""
    return aio_pika.Message(
        body,
        content_type=properties.content_type,
        delivery_mode=properties.delivery_mode,
        message_id=properties.message_id,
        headers=properties.headers,
        user_id=properties.user_id,
    )
