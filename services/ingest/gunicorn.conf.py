"""Run the ingest under gunicorn with several worker processes (seed 000's deployment).

    gunicorn -c services/ingest/gunicorn.conf.py

Each worker is a whole ingest (its own broker and database connections, its
own recorder consumer); the broker spreads work among them. Settings:
GUNICORN_WORKERS (default 2 x cores + 1), GUNICORN_BIND (default
HOOKYARD_HTTP_HOST:HOOKYARD_INGEST_PORT), GUNICORN_TIMEOUT, and every
HOOKYARD_* variable. /metrics aggregates all workers.

The app factory hands the worker a ready-made runner (`runner.make_runner`),
so workers cut off slow senders and close idle connections exactly as
`hookyard-ingest` does (HOOKYARD_HTTP_READ_TIMEOUT_SECONDS,
HOOKYARD_HTTP_KEEPALIVE_SECONDS); gunicorn's own `keepalive` is not used.
"""

import math
import multiprocessing
import os
import shutil
import tempfile

from hookyard_common.core.settings import get_settings

_settings = get_settings()

wsgi_app = "hookyard_ingest.main:gunicorn_app"
worker_class = "aiohttp.GunicornWebWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
bind = os.environ.get("GUNICORN_BIND", f"{_settings.http_host}:{_settings.ingest_port}")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Workers get the shutdown deadline to finish in-flight requests and messages.
graceful_timeout = math.ceil(_settings.shutdown_deadline_seconds) + 5
accesslog = None

# Prometheus multiprocess mode: every worker writes its samples here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hookyard-metrics-")


def on_exit(server):
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
