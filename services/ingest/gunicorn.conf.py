"""Run the ingest under gunicorn with several worker processes (seed 000's deployment).

    gunicorn -c services/ingest/gunicorn.conf.py

Each worker is a whole ingest (its own broker and database connections, its
own recorder consumer); the broker spreads work among them. Settings:
GUNICORN_WORKERS (default 2 x cores + 1, where cores is the container's CPU
quota when it has one: see `available_cores`), GUNICORN_BIND (else
`settings.ingest_address`: HOOKYARD_HTTP_HOST / HOOKYARD_INGEST_PORT when set,
else seed 000's WEBHOOK_HOST / WEBHOOK_PORT, else Cloud Run's PORT),
GUNICORN_TIMEOUT, GUNICORN_THREADS (passed on; the aiohttp worker serves
every request on one event loop, so it changes nothing), and every
HOOKYARD_* variable. /metrics aggregates all workers.

The app factory hands the worker a ready-made runner (`runner.make_runner`),
so workers cut off slow senders and close idle connections exactly as
`hookyard-ingest` does (HOOKYARD_HTTP_READ_TIMEOUT_SECONDS,
HOOKYARD_HTTP_KEEPALIVE_SECONDS); gunicorn's own `keepalive` is not used.
"""

import math
import os
import shutil
import tempfile
from pathlib import Path

from hookyard_common.core.settings import get_settings, ingest_address

_settings = get_settings()

#: Where the kernel shows this container's own cgroup (a cgroup namespace puts it at the root).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs the cgroup may use per period (cgroup v2 `cpu.max`, else v1
    `cfs_quota_us / cfs_period_us`); None when unlimited or not readable."""
    try:
        quota, period = (root / "cpu.max").read_text().split()
    except (OSError, ValueError):
        for v1 in (root / "cpu", root / "cpu,cpuacct"):
            try:
                quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
                period = (v1 / "cpu.cfs_period_us").read_text().strip()
                break
            except OSError:
                continue
        else:
            return None
    if quota in ("max", "-1") or int(period) <= 0:
        return None
    return int(quota) / int(period)


def available_cores(root: Path = CGROUP_ROOT) -> int:
    """The cores this process may really use: the CPUs it may run on, capped by the cgroup's
    quota (rounded up). A container limited to 1 CPU on a 64-core node counts 1, not 64, or
    2 x 64 + 1 workers would share one CPU's time and the memory limit."""
    cores = len(os.sched_getaffinity(0))
    quota = cpu_quota(root)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


wsgi_app = "hookyard_ingest.main:gunicorn_app"
# The event loop HOOKYARD_EVENT_LOOP names, as `hookyard-ingest` runs (runner.loop_factory).
worker_class = "aiohttp.GunicornUVLoopWebWorker" if _settings.event_loop == "uvloop" else "aiohttp.GunicornWebWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", available_cores() * 2 + 1))


_host, _port = ingest_address(os.environ, _settings)
bind = os.environ.get("GUNICORN_BIND") or f"{_host}:{_port}"
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Workers get the shutdown deadline to finish in-flight requests and messages.
graceful_timeout = math.ceil(_settings.shutdown_deadline_seconds) + 5
accesslog = None

# Prometheus multiprocess mode: every worker writes its samples here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hookyard-metrics-")


def post_worker_init(worker):
    from hookyard_common.runtime.runner import tune_gc

    tune_gc()  # as `hookyard-ingest` does


def on_exit(server):
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
