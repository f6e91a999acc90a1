"""The ingest under gunicorn with several workers (seed 000's deployment)."""

import aiohttp
import pytest

from helpers import IngestClient, drain_queue, gunicorn_ingest


@pytest.mark.slow
async def test_gunicorn_workers_serve_and_stop_cleanly(settings, amqp_url, tmp_path):
    settings = settings.model_copy(update={"admin_token": "gunicorn-admin"})
    with gunicorn_ingest(settings, tmp_path, workers=2):
        async with aiohttp.ClientSession() as session:
            client = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", settings, session)
            await client.wait_ready(timeout=60)
            key = await client.tenant()
            source = await client.source(key, "none")
            for n in range(20):
                status, body, _ = await client.call("POST", f"/in/{source['id']}", json={"type": "t", "n": n})
                assert status == 200, body
            assert len(await drain_queue(amqp_url, client.dispatch_queues(), expect=20)) == 20
            status, metrics, _ = await client.call("GET", "/metrics")
            # Aggregated over the workers: all 20 requests counted, whichever worker took them.
            line = next(
                row
                for row in metrics.splitlines()
                if row.startswith("hookyard_ingest_requests_total{") and "accepted" in row
            )
            assert float(line.rsplit(" ", 1)[1]) == 20.0
