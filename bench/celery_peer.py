"""The Celery peer of the dispatcher bench: what a Python shop would run instead of Hookyard.

One task that POSTs an event's body to the sink through a pooled
`requests.Session` (one per worker process, kept for the process's life), on
the bench's RabbitMQ, with `acks_late` so a message is acked after its POST, as
the dispatcher does. The worker runs the prefork pool:

    BENCH_AMQP_URL=... BENCH_TARGET=... celery -A celery_peer worker --pool prefork --concurrency 8

Needs the `bench` dependency group (`uv sync --group bench`), never installed
by `make test` or `make up`.
"""

from __future__ import annotations

import os

import requests
from celery import Celery

#: Celery's own queue on the bench's broker (classic, durable: Celery's default).
QUEUE = "bench.celery"

app = Celery("celery_peer", broker=os.environ.get("BENCH_AMQP_URL", "amqp://localhost"))
app.conf.update(
    task_acks_late=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_session: requests.Session | None = None


def session() -> requests.Session:
    """This worker process's pooled session (created after the fork, never shared across it)."""
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


@app.task(name="deliver")
def deliver(body: str) -> int:
    response = session().post(
        os.environ["BENCH_TARGET"], data=body.encode(), headers={"Content-Type": "application/json"}, timeout=30
    )
    return response.status_code
