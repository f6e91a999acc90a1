"""Entry point of the ingest service (`hookyard-ingest`)."""

from hookyard_common import runner
from hookyard_common.runner import Context


async def setup(ctx: Context) -> None:
    """Connections, topology and probes come from the runner; the ingest's routes hook in here."""


def main() -> None:
    runner.main("ingest", setup)


if __name__ == "__main__":
    main()
