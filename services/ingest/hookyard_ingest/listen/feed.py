"""A live copy of one tenant's events for one listener, through the broker.

Each listener gets a queue of its own on `hookyard.events`, bound with
`<tenant_id>.#`: exclusive (only this connection may use it, and it goes
with the connection), auto-delete, not durable, consumed without acks. The
broker copies every event to it beside `hookyard.dispatch`, so listening
takes nothing from the dispatcher, every listener gets every event, and it
works whichever ingest replica accepted the event.

The channel is not restored after a broker reconnect: events published
meanwhile would be missing from the stream with nothing to say so. Instead
`on_lost` is called, the listener is dropped, and it catches up from the
message log when it reconnects.
"""

from __future__ import annotations

from collections.abc import Callable

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker
from hookyard_common.schemas import Event

# A backstop only: the ingest takes messages as they come, and the listener's
# outbox is the real limit. Should the ingest stall, the broker keeps the newest.
QUEUE_MAX_LENGTH = 10_000


class TenantFeed:
    def __init__(
        self,
        broker: Broker,
        tenant_id: str,
        queue_name: str,
        on_event: Callable[[Event], None],
        on_lost: Callable[[], None],
        must_contain: bytes | None = None,
    ):
        self.broker = broker
        self.tenant_id = tenant_id
        self.queue_name = queue_name
        self.on_event = on_event
        self.on_lost = on_lost
        # Every listener reads all of its tenant's events: skipping those that cannot be
        # its own before parsing keeps that cheap for the ingest.
        self.must_contain = must_contain
        self._channel: AbstractChannel | None = None
        self._closing = False

    async def open(self) -> None:
        """Subscribe; once this returns, every event the tenant publishes reaches `on_event`."""
        # Its lane first: were this queue the only one bound for the tenant, the events exchange
        # would route its events here alone and never to the dispatcher's alternate exchange.
        await self.broker.declare_lane(self.tenant_id)
        channel = await self.broker.transient_channel()
        try:
            queue = await channel.declare_queue(
                self.queue_name,
                durable=False,
                exclusive=True,
                auto_delete=True,
                arguments={"x-max-length": QUEUE_MAX_LENGTH, "x-overflow": "drop-head"},
            )
            exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)
            await queue.bind(exchange, routing_key=f"{self.tenant_id}.#")
            await queue.consume(self._on_message, no_ack=True)
        except BaseException:
            await channel.close()
            raise
        channel.close_callbacks.add(self._on_channel_closed)
        self._channel = channel

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self.must_contain is not None and self.must_contain not in message.body:
            return
        try:
            event = Event.from_bytes(message.body)
        except ValidationError:
            return  # the dispatcher parks it in hookyard.invalid; nothing to show
        if event.tenant_id == self.tenant_id:  # a tenant publishing on the broker may only publish as itself
            self.on_event(event)

    async def _on_channel_closed(self, _channel, _exc) -> None:
        if not self._closing:
            self.on_lost()

    async def close(self) -> None:
        self._closing = True
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
