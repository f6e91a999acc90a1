"""Entry point of the dispatcher service (`hookyard-dispatcher`).

It consumes every tenant's lane side by side (lanes.py) and the shared
`hookyard.dispatch` (events no lane took): each event is checked and recorded by the
intake, then fanned out to the tenant's matching active endpoints (or only
the event's `target_endpoint_id`), one delivery task each. The event is
acked once every task is delivered or durably handed to the retry tiers,
or, for a delivery still going on after the hold, covered by a watch copy
there (worker.run_message).
"""

from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage

from hookyard_common.broker import topology
from hookyard_common.delivery.routing import first_task, recipients
from hookyard_common.delivery.worker import DeliveryWorker, build_worker
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context
from hookyard_common.schemas import Event, utcnow
from hookyard_dispatcher.intake import Intake
from hookyard_dispatcher.lanes import Lanes


async def fan_out(worker: DeliveryWorker, event: Event) -> list[str]:
    targets = recipients(event, await worker.endpoints.get(event.tenant_id))
    if not targets:
        return []
    now = utcnow()
    return await worker.run_message([first_task(event, endpoint, now) for endpoint in targets])


async def setup(ctx: Context) -> None:
    intake = Intake(ctx.store, ctx.broker.service_users, timedelta(hours=ctx.settings.idempotency_window_hours))
    worker = await build_worker(ctx)
    ctx.on_close(intake.events.flush)

    async def handle(delivery: AbstractIncomingMessage) -> None:
        event = await intake.read(delivery)
        if event is not None:
            await fan_out(worker, event)

    await ctx.consume(topology.DISPATCH_QUEUE, handle)
    await Lanes(ctx, handle).start()


def main() -> None:
    runner.main("dispatcher", setup)


if __name__ == "__main__":
    main()
