"""Entry point of the heartbeat service (`hookyard-heartbeat`)."""

from hookyard_common import runner
from hookyard_common.runner import Context


async def setup(ctx: Context) -> None:
    """Connections, topology and probes come from the runner; the heartbeat's own work hooks in here."""


def main() -> None:
    runner.main("heartbeat", setup)


if __name__ == "__main__":
    main()
