"""The ingest service (`hookyard-ingest`): its entry points.

`main` serves it as one process; `gunicorn_app` hands gunicorn's aiohttp
worker the same app (`gunicorn.conf.py`). What it serves, and how the
routes are wired, is `app.py`.
"""

from __future__ import annotations

from aiohttp import web

from hookyard_common.core import logs, tracing
from hookyard_common.core.settings import get_settings
from hookyard_common.runtime import runner
from hookyard_ingest.app import create_app


async def gunicorn_app() -> web.AppRunner:
    """Factory for gunicorn's aiohttp worker (see gunicorn.conf.py): a runner, not a bare app,
    so workers serve with the same head deadline and keep-alive as `hookyard-ingest`."""
    settings = get_settings()
    logs.configure("ingest", settings.log_level, settings.log_format)
    tracing.configure("ingest")  # in each worker: the exporter's thread does not survive a fork
    return runner.make_runner(create_app(settings), settings)


def main() -> None:
    runner.main("ingest", app_factory=create_app)


if __name__ == "__main__":
    main()
