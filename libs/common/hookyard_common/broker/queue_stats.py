"""How full Hookyard's queues are, for the operator: from RabbitMQ's management API, else by AMQP.

The management API answers for every queue of the vhost in one call: depth,
consumers and the history of the depth. A quorum queue (all of Hookyard's
are) reports no head-message timestamp, and taking its head message to read
one would count as a delivery towards the poison limit, so the oldest
message's age is read from that history instead: how long the queue has not
been empty, at the broker's sample step (`SAMPLE_SECONDS` over the last
`HISTORY_SECONDS`). While nothing consumes a queue that is the age of its
oldest message; while something does, its upper bound. The broker's figures
lag by its statistics interval (5 s by default).

Without the management API, a passive declare per queue gives depth and
consumers, and the age is unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import quote, unquote

import aiohttp
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import ChannelClosed

from hookyard_common.broker import failover

#: How far back the depth history is read, and its step (the broker's default detailed samples).
HISTORY_SECONDS = 600
SAMPLE_SECONDS = 5
#: What the management API is asked for, per queue: nothing else of its large answer.
COLUMNS = "name,messages,messages_ready,messages_unacknowledged,consumers,messages_details"
#: Hookyard's queues, lanes and tiers all start with it.
PREFIX = "hookyard."


@dataclass(frozen=True)
class QueueStat:
    name: str
    messages: int
    consumers: int
    ready: int | None = None
    unacknowledged: int | None = None
    oldest_age_seconds: float | None = None  # None: empty, or not known

    def view(self) -> dict:
        return asdict(self)


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names ("/" when it names none)."""
    path = failover.primary(amqp_url).raw_path
    return unquote(path[1:]) if len(path) > 1 else "/"


async def from_management(
    session: aiohttp.ClientSession, management_url: str, vhost: str, now: datetime, timeout: float = 5.0
) -> list[QueueStat]:
    """Every Hookyard queue of `vhost`, as the management API reports it (raises when it cannot)."""
    url = f"{management_url.rstrip('/')}/api/queues/{quote(vhost, safe='')}"
    params = {"columns": COLUMNS, "lengths_age": str(HISTORY_SECONDS), "lengths_incr": str(SAMPLE_SECONDS)}
    async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        response.raise_for_status()
        queues = await response.json()
    now_ms = now.timestamp() * 1000
    return sorted(
        (
            QueueStat(
                name=queue["name"],
                messages=int(queue.get("messages") or 0),
                consumers=int(queue.get("consumers") or 0),
                ready=queue.get("messages_ready"),
                unacknowledged=queue.get("messages_unacknowledged"),
                oldest_age_seconds=backlog_age(queue.get("messages_details", {}).get("samples", []), now_ms),
            )
            for queue in queues
            if queue["name"].startswith(PREFIX)
        ),
        key=lambda stat: stat.name,
    )


def backlog_age(samples: Iterable[dict], now_ms: float) -> float | None:
    """Seconds since the depth history first showed the current backlog: since the sample after the
    newest empty one (the whole history when it never was empty); None when the queue is empty now."""
    newest_first = sorted(samples, key=lambda sample: sample["timestamp"], reverse=True)
    if not newest_first or not newest_first[0]["sample"]:
        return None
    since = newest_first[0]["timestamp"]
    for sample in newest_first[1:]:
        if not sample["sample"]:
            break
        since = sample["timestamp"]
    return max(0.0, (now_ms - since) / 1000)


async def by_declare(connection: AbstractConnection, names: Iterable[str]) -> list[QueueStat]:
    """Depth and consumers of each named queue that exists, by AMQP passive declares (age unknown)."""
    found = []
    channel = await connection.channel()
    try:
        for name in names:
            try:
                declared = await channel.declare_queue(name, passive=True)
            except ChannelClosed:  # no such queue (a lane not made yet): the broker closed the channel
                channel = await connection.channel()
                continue
            result = declared.declaration_result
            found.append(QueueStat(name, result.message_count or 0, result.consumer_count or 0))
    finally:
        await asyncio.shield(channel.close())
    return found
