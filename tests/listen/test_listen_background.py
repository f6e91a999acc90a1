"""`hookyard listen --background`, `listen status` and `listen stop`, as real processes."""

import asyncio
import json
import os
import signal

from listen_frames import SECRET, signed

from cli_process import CliProcess, cli_env, run_cli
from helpers import endpoint
from hookyard_cli.devstack import free_port


async def _status(env: dict) -> list[dict]:
    code, out, err = await run_cli("listen", "status", "--json", env=env)
    assert code in (0, 1), err
    return json.loads(out)["listeners"]


async def test_a_background_listener_reports_its_last_error_and_stops(platform, tmp_path):
    key = await platform.tenant()
    source = await platform.source(key, "hmac", secrets=[SECRET])
    env = cli_env(tmp_path, platform.base, key)
    nobody = f"http://127.0.0.1:{free_port()}/hooks"  # the developer's app is not running
    code, out, err = await run_cli("listen", "--source", source["id"], "--forward-to", nobody, "--background", env=env)
    assert code == 0, out + err
    code, _, err = await run_cli("listen", "--source", source["id"], "--forward-to", nobody, "--background", env=env)
    assert code == 2 and "already running" in err, err

    raw, headers = signed({"type": "order.created"})
    status, body, _ = await platform.call("POST", f"/in/{source['id']}", data=raw, headers=headers)
    assert status == 200, body
    for _ in range(100):
        [state] = await _status(env)
        if state["forwarded"]:
            break
        await asyncio.sleep(0.1)
    assert state["connected"] and state["forwarded"] == 1 and "connection refused" in state["last_error"], state
    code, out, _ = await run_cli("listen", "status", env=env)
    assert code == 0 and "connected since" in out and "1 forwarded" in out and "connection refused" in out, out

    # Its output, as `bench ngrok logs --lines N` showed the tunnel's.
    code, out, err = await run_cli("listen", "logs", source["id"], "-n", "50", env=env)
    shown = [json.loads(line.split(" | ", 1)[1]) for line in out.splitlines()]
    assert code == 0 and [line["type"] for line in shown] == ["connected", "event"], out + err
    assert shown[1]["status"] is None and "refused" in shown[1]["error"]

    code, out, err = await run_cli("listen", "stop", "src_other", env=env)
    assert code == 1 and "No listener of src_other" in out, out + err
    code, out, err = await run_cli("listen", "stop", source["id"], env=env)
    assert code == 0 and f"Stopped the listener of {source['id']}" in out, out + err
    assert await _status(env) == []
    code, _, err = await run_cli("listen", "logs", "src_other", env=env)
    assert code == 2 and "no log" in err, err


async def test_a_killed_listener_is_not_reported_as_running(platform, tmp_path):
    key = await platform.tenant()
    source = await platform.source(key, "hmac", secrets=[SECRET])
    env = cli_env(tmp_path, platform.base, key)
    code, out, err = await run_cli(
        "listen", "--source", source["id"], "--forward-to", "http://127.0.0.1:9/x", "--background", env=env
    )
    assert code == 0, out + err
    [state] = await _status(env)
    os.kill(state["pid"], signal.SIGKILL)  # no chance to remove its state file
    for _ in range(50):
        if not await _status(env):
            break
        await asyncio.sleep(0.1)
    assert await _status(env) == []
    assert not list((tmp_path / "xdg-state/hookyard/listen").glob("*.json")), "the stale state file was not removed"


async def test_a_listener_whose_endpoint_is_deleted_ends_with_the_api_error_code(platform, receiver, tmp_path):
    key = await platform.tenant()
    ep = await endpoint(platform, key, receiver.url("/hooks"))
    env = cli_env(tmp_path, platform.base, key)
    cli = await CliProcess.start(
        "listen", "--endpoint", ep["id"], "--forward-to", receiver.url("/local"), "--json", env=env
    )
    try:
        await cli.wait_for("connected")
        assert [s["target_id"] for s in await _status(env)] == [ep["id"]], "a foreground listener is shown too"
        status, _, _ = await platform.call("DELETE", f"/v1/endpoints/{ep['id']}", token=key)
        assert status == 204
        code = await asyncio.wait_for(cli.process.wait(), 30)
        err = (await cli.process.stderr.read()).decode()
        assert code == 4 and "nothing more to listen to" in err, err
    finally:
        cli.kill()
    assert await _status(env) == []
