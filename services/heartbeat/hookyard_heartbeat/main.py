"""Entry point of the heartbeat service (`hookyard-heartbeat`).

It runs one background loop: the scan that turns monitors past their
deadline `late` or `down` and publishes their `monitor.*` events (see
`scanner.py`). Any number of replicas may run; each change happens once.
"""

from collections.abc import Callable
from datetime import datetime

from hookyard_common.monitors.changes import MonitorChanges
from hookyard_common.runtime import runner
from hookyard_common.runtime.runner import Context, Setup
from hookyard_common.schemas import utcnow
from hookyard_heartbeat.scanner import Scanner


def setup_with(clock: Callable[[], datetime]) -> Setup:
    """The service's setup reading time from `clock` (tests move a fake clock instead of sleeping)."""

    async def setup(ctx: Context) -> None:
        changes = MonitorChanges(ctx.store, ctx.broker, clock)
        scanner = Scanner(ctx.store, changes, batch=ctx.settings.monitor_scan_batch, clock=clock)
        ctx.background(scanner.run(ctx.settings.monitor_scan_seconds))

    return setup


setup = setup_with(utcnow)


def main() -> None:
    runner.main("heartbeat", setup)


if __name__ == "__main__":
    main()
