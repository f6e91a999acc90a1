"""The ingest service (`hookyard-ingest`): its entry points.

`main` serves it as one process; `gunicorn_app` hands gunicorn's aiohttp
worker the same app (`gunicorn.conf.py`). Both listen where `settings.ingest_address`
says, which also reads seed 000's and Cloud Run's variables. What it serves, and how the
routes are wired, is `app.py`.
"""

from __future__ import annotations

import os

from aiohttp import web

from hookyard_common.core import logs, tracing
from hookyard_common.core.settings import get_settings, ingest_address
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
    settings = get_settings()
    host, port = ingest_address(os.environ, settings)
    settings = settings.model_copy(update={"http_host": host, "ingest_port": port})
    runner.main("ingest", app_factory=create_app, settings=settings)


if __name__ == "__main__":
    main()
