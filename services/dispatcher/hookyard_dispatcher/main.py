"""Entry point of the dispatcher service (`hookyard-dispatcher`).

It consumes `hookyard.dispatch`: each event is checked and recorded by the
intake, then fanned out to the tenant's matching active endpoints (or only
the event's `target_endpoint_id`), one delivery task each. The event is
acked once every task is delivered or durably handed to the retry tiers.
"""

import asyncio
from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage
from hookyard_common import outages, runner, topology
from hookyard_common.runner import Context
from hookyard_common.schemas import DeliveryTask, Event, utcnow
from hookyard_common.routing import first_task, recipients
from hookyard_common.worker import DeliveryWorker, build_worker

from .intake import Intake


async def fan_out(worker: DeliveryWorker, event: Event) -> list[str]:
    targets = recipients(event, await worker.endpoints.get(event.tenant_id))
    now = utcnow()
    if len(targets) == 1:  # the common case, without a task per delivery
        return [await worker.run(first_task(event, targets[0], now))]
    return await asyncio.gather(*(run_apart(worker, first_task(event, endpoint, now)) for endpoint in targets))


async def run_apart(worker: DeliveryWorker, task: DeliveryTask) -> str:
    """One of several deliveries of an event: if a dependency fails during it, only this task
    waits on the tiers; the event is not held whole, so its delivered siblings are not redone."""
    try:
        return await worker.run(task)
    except Exception as exc:
        if not outages.is_dependency_failure(exc):
            raise
        await worker.hold(task)
        return "held"


async def setup(ctx: Context) -> None:
    intake = Intake(ctx.store, timedelta(days=ctx.settings.message_retention_days), ctx.broker.service_users)
    worker = await build_worker(ctx)
    ctx.on_close(intake.events.flush)

    async def handle(delivery: AbstractIncomingMessage) -> None:
        event = await intake.read(delivery)
        if event is not None:
            await fan_out(worker, event)

    await ctx.consume(topology.DISPATCH_QUEUE, handle)


def main() -> None:
    runner.main("dispatcher", setup)


if __name__ == "__main__":
    main()
