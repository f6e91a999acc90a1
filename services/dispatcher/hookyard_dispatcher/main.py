"""Entry point of the dispatcher service (`hookyard-dispatcher`).

It consumes `hookyard.dispatch`: each event is checked and recorded by the
intake, then fanned out to the tenant's matching endpoints. The message is
acked only after that, so a crash means a redelivery, never a loss.
"""

from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage
from hookyard_common import runner, topology
from hookyard_common.runner import Context

from .intake import Intake


async def setup(ctx: Context) -> None:
    intake = Intake(ctx.store, timedelta(days=ctx.settings.message_retention_days))

    async def handle(delivery: AbstractIncomingMessage) -> None:
        await intake.read(delivery)
        # Fan-out to endpoints arrives with the endpoints API (issue 4).

    await ctx.consume(topology.DISPATCH_QUEUE, handle)


def main() -> None:
    runner.main("dispatcher", setup)


if __name__ == "__main__":
    main()
