"""All four service processes start, report ready, expose metrics, and stop cleanly on SIGTERM."""

import signal

import pytest

from helpers import http_get, start_service, wait_until

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")


@pytest.mark.slow
def test_services_start_ready_and_stop_cleanly_on_sigterm(settings, tmp_path):
    processes = {name: start_service(name, settings, tmp_path) for name in SERVICES}
    try:
        for name in SERVICES:
            url = f"http://127.0.0.1:{settings.service_port(name)}"
            wait_until(
                lambda url=url: http_get(url + "/readyz")[0] == 200,
                timeout=60,
                what=f"{name} /readyz",
            )
            assert http_get(url + "/healthz")[0] == 200
            status, body = http_get(url + "/metrics")
            assert status == 200
            # On uvloop, as every service runs by default (HOOKYARD_EVENT_LOOP).
            info = f'hookyard_service_info{{event_loop="uvloop",service="{name}",version="0.1.0"}} 1.0'
            assert info.encode() in body, [line for line in body.splitlines() if b"service_info" in line]
            assert b"hookyard_ready 1.0" in body
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            code = process.wait(timeout=settings.shutdown_deadline_seconds + 5)
            log = (tmp_path / f"{name}.log").read_text()
            assert code == 0, f"{name} exited {code}:\n{log}"
            assert '"message":"stopped"' in log
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
