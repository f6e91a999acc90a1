"""Entry point of the dispatcher service (`hookyard-dispatcher`)."""

from hookyard_common import runner
from hookyard_common.runner import Context


async def setup(ctx: Context) -> None:
    """Connections, topology and probes come from the runner; the dispatcher's own work hooks in here."""


def main() -> None:
    runner.main("dispatcher", setup)


if __name__ == "__main__":
    main()
