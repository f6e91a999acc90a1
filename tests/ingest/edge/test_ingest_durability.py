"""Accepted means durable: SIGKILL the ingest mid-stream, and every 2xx is on the broker."""

import asyncio
import signal

import aiohttp
import pytest

from helpers import IngestClient, drain_queue, start_service
from hookyard_common.schemas import Event


@pytest.mark.slow
async def test_every_2xx_survives_a_sigkill_of_the_ingest(settings, amqp_url, tmp_path):
    settings = settings.model_copy(
        update={"admin_token": "durability-admin", "rate_limit_per_ip": 1_000_000, "rate_limit_per_source": 1_000_000}
    )
    process = start_service("ingest", settings, tmp_path)
    accepted: list[str] = []
    failures = 0
    try:
        async with aiohttp.ClientSession() as session:
            client = IngestClient(f"http://127.0.0.1:{settings.ingest_port}", settings, session)
            await client.wait_ready()
            key = await client.tenant()
            source = await client.source(key, "none")
            url = f"{client.base}/in/{source['id']}"

            async def sender(worker: int) -> None:
                nonlocal failures
                for n in range(10_000):
                    try:
                        async with session.post(url, json={"type": "t", "n": f"{worker}-{n}"}) as response:
                            if response.status == 200:
                                accepted.append((await response.json())["id"])
                            else:
                                failures += 1
                    except aiohttp.ClientError:
                        return  # the ingest is gone

            senders = [asyncio.create_task(sender(w)) for w in range(16)]
            while len(accepted) < 300:
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*senders), 30)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()

    assert len(accepted) >= 300
    dispatched = await drain_queue(amqp_url, client.dispatch_queues(), expect=len(accepted), settle=1.0)
    on_broker = {Event.from_bytes(m.body).id for m in dispatched}
    lost = set(accepted) - on_broker
    assert not lost, f"{len(lost)} of {len(accepted)} accepted messages are not on the broker"
