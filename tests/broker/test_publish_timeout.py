"""A publish whose confirm never comes fails after HOOKYARD_PUBLISH_TIMEOUT_SECONDS instead of hanging.

The broker is real; between it and the client sits a TCP relay the test can
freeze (it stops passing the broker's bytes on), which is what a stuck
broker or a half-dead connection looks like to the client.
"""

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from hookyard_common.broker import topology
from hookyard_common.broker.connection import Broker


class FreezableRelay:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, freezes=False),
            self._pipe(upstream_reader, writer, freezes=True),
            return_exceptions=True,
        )

    async def _pipe(self, reader, writer, freezes: bool) -> None:
        try:
            while data := await reader.read(65536):
                if freezes and self.frozen.is_set():
                    continue  # swallowed: the client never hears the broker again
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()


async def test_a_publish_without_confirm_times_out(amqp_url):
    parts = urlsplit(amqp_url)
    relay = FreezableRelay(parts.hostname, parts.port or 5672)
    port = await relay.start()
    relayed = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))
    broker = await Broker.connect(relayed, (200,), publish_timeout_seconds=0.5)
    try:
        await broker.publish(b"{}", routing_key=topology.routing_key("ten_1", "a.b"))  # confirmed: goes through
        relay.frozen.set()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(broker.publish(b"{}", routing_key=topology.routing_key("ten_1", "a.b")), 30)
        assert time.monotonic() - started < 10, "the publish waited far past its timeout"
    finally:
        relay.frozen.clear()
        await asyncio.wait_for(broker.close(), 10)
        await relay.stop()
