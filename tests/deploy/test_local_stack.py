"""`make up` / `make down` and `hookyard status`, run as a newcomer would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BIN, REPO, service_env
from hookyard_cli.devstack import ManagedProcess


def test_stop_never_kills_a_process_that_merely_reused_a_recorded_pid(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        record = ManagedProcess("imposter", tmp_path)
        # Same PID, different start time: not the process we started.
        (tmp_path / "imposter.pid").write_text(f"{sleeper.pid} 1\n")
        assert not record.running()
        record.stop(timeout=1)
        assert sleeper.poll() is None, "an unrelated process was killed"
        assert not (tmp_path / "imposter.pid").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_up_status_down_with_given_dependencies(settings, tmp_path):
    """With AMQP_URL and MONGO_URI given, `up` starts only the services; `down` stops exactly them."""
    env = {**service_env(settings), "HOOKYARD_STATE_DIR": str(tmp_path / "state")}
    dev = [sys.executable, "-m", "hookyard_cli.dev"]
    up = subprocess.run([*dev, "up"], env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{settings.ingest_port}/  (ready)" in up.stdout
        assert f"http://127.0.0.1:{settings.ingest_port}/console/" in up.stdout
        pids = {path.stem: int(path.read_text().split()[0]) for path in (tmp_path / "state" / "run").glob("*.pid")}
        assert sorted(pids) == ["dispatcher", "heartbeat", "ingest", "retrier"]

        # `hookyard status` finds the connection settings and the ports in the state dir's env file.
        status_env = {k: v for k, v in env.items() if k not in ("AMQP_URL", "MONGO_URI") and not k.endswith("_PORT")}
        status = subprocess.run(
            [str(BIN / "hookyard"), "status", "--json"], env=status_env, capture_output=True, text=True, timeout=30
        )
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["ready"], status.stdout + status.stderr
        assert {row["component"] for row in report["components"]} >= {"rabbitmq", "mongodb", "hookyard-ingest"}
    finally:
        down = subprocess.run([*dev, "down"], env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "ingest, dispatcher, retrier, heartbeat" in down.stdout
    for pid in pids.values():
        assert not _alive(pid), f"process {pid} survived make down"

    # With the services gone, status says so and exits non-zero.
    status = subprocess.run([str(BIN / "hookyard"), "status"], env=env, capture_output=True, text=True, timeout=30)
    assert status.returncode == 1
    assert "hookyard-ingest" in status.stdout and "NOT READY" in status.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"
