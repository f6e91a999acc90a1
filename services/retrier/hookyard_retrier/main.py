"""Entry point of the retrier service (`hookyard-retrier`).

It pumps the retry tiers (tier_pump.py: each message passed on when its wait is
over) and consumes `hookyard.retry.due`, where they land. A task that is not yet due (its delay spans tiers) hops
to the next fitting tier; a message another consumer held through a
dependency outage (outages.py) goes back to its queue; one whose payload was erased meanwhile is dropped
(erasure.py); a due one is attempted exactly as the dispatcher would, and then retried again,
dead-lettered, or done. In the background it
takes over dead-letter replays whose claim lapsed (their replica died
before the broker confirmed the publish: dead_letters.py), and keeps the
gauges of the invalid queue current (parked.py).
"""

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Histogram
from pydantic import ValidationError

from hookyard_common.broker import outages, parked, tier_pump, topology
from hookyard_common.delivery import dead_letters, erasure
from hookyard_common.delivery.worker import build_worker
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context
from hookyard_common.schemas import DeliveryTask, utcnow

log = logging.getLogger(__name__)

# A task this close to its due time is attempted rather than sent round again
# (clock granularity); anything earlier waits another tier: late, never early.
EARLY_TOLERANCE_SECONDS = 0.005

LATENESS = Histogram(
    "hookyard_retry_lateness_seconds",
    "How long after its due time a retry was attempted: the age of the retry backlog.",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)


async def setup(ctx: Context) -> None:
    worker = await build_worker(ctx)

    async def handle(delivery: AbstractIncomingMessage) -> None:
        back = outages.returning(delivery)
        if back is not None:  # held through an outage by another queue's consumer: its wait is over
            await outages.send_back(ctx.broker, delivery, back)
            return
        try:
            task = DeliveryTask.from_bytes(delivery.body)
        except ValidationError as exc:
            raise outages.unusable("a delivery task", exc) from None
        remaining = (task.due_at - utcnow()).total_seconds()
        if remaining > EARLY_TOLERANCE_SECONDS:
            await worker.hop(task, remaining)
            return
        if await worker.outlived(task) or await erasure.dropped(ctx.store, task):
            return
        LATENESS.observe(max(0.0, -remaining))
        await worker.run_message([task.model_copy(update={"watch_since": None})])

    await ctx.consume(topology.RETRY_DUE_QUEUE, handle)
    if not ctx.draining:
        pumps = await tier_pump.start(ctx.broker, ctx.settings.retry_tiers_ms, ctx.settings.prefetch)
        for pump in pumps:
            ctx.on_close(pump.stop)
    ctx.background(resume_stalled_replays(ctx))
    ctx.background(parked.watch(ctx.broker, ctx.settings.invalid_scan_seconds))


async def resume_stalled_replays(ctx: Context) -> None:
    """Every lease period, send again the replays whose claim lapsed before their publish was confirmed."""
    period = dead_letters.replay_lease(ctx.broker).total_seconds()
    while True:
        await asyncio.sleep(period)
        try:
            resumed = await dead_letters.resume_stalled(ctx.store, ctx.broker, utcnow())
        except Exception:  # the database or the broker is away: next round
            log.warning("could not look for stalled replays", exc_info=True)
            continue
        if resumed:
            log.info("stalled replays resumed", extra={"count": resumed})


def main() -> None:
    runner.main("retrier", setup)


if __name__ == "__main__":
    main()
