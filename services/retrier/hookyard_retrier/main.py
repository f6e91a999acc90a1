"""Entry point of the retrier service (`hookyard-retrier`)."""

from hookyard_common import runner
from hookyard_common.runner import Context


async def setup(ctx: Context) -> None:
    """Connections, topology and probes come from the runner; the retrier's own work hooks in here."""


def main() -> None:
    runner.main("retrier", setup)


if __name__ == "__main__":
    main()
