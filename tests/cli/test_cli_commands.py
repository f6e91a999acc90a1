"""The CLI's day-to-day commands, run as real processes against a running platform."""

import asyncio
import hashlib
import hmac
import json

from cli_process import CliProcess, cli_env, run_cli
from helpers import endpoint


async def test_tenant_and_source_from_the_cli_then_the_log_followed(platform, tmp_path):
    env = cli_env(tmp_path, platform.base, HOOKYARD_ADMIN_TOKEN=platform.settings.admin_token)
    code, out, err = await run_cli("tenants", "create", "acme", "--save", env=env)
    assert code == 0, err
    assert "shown this once" in out and (tmp_path / "env").read_text().startswith("HOOKYARD_API_KEY=hy_")
    # From here on the saved key is used: no variable, no flag.
    code, out, err = await run_cli(
        "sources", "create", "--provider", "hmac", "--secret", "s3cr3t-value", "--json", env=env
    )
    assert code == 0, err
    source = json.loads(out)
    code, _, err = await run_cli("sources", "create", "--provider", "stripe", env=env)
    assert code == 4 and "secret_required" in err, err  # 4: the API refused it (exit_codes.py)

    tail = await CliProcess.start("messages", "tail", "--json", "--interval", "0.2", env=env)
    try:
        ids = []
        for n in range(2):
            raw = json.dumps({"type": "order.created", "n": n}).encode()
            headers = {
                "X-Webhook-Signature": hmac.new(b"s3cr3t-value", raw, hashlib.sha256).hexdigest(),
                "Content-Type": "application/json",
            }
            status, body, _ = await platform.call("POST", f"/in/{source['id']}", data=raw, headers=headers)
            assert status == 200, body
            ids.append(body["id"])
        shown = [await tail.wait_for(id=event_id) for event_id in ids]
        assert all(m["source_id"] == source["id"] and m["verification"]["verified"] for m in shown)
    finally:
        await tail.stop()
    assert [line["id"] for line in tail.lines] == ids, "a message was shown twice or out of order"

    # Without following: the latest, oldest first.
    code, out, err = await run_cli("messages", "tail", "--no-follow", "-n", "1", env=env)
    assert code == 0 and ids[1] in out and ids[0] not in out, out + err


async def test_dead_letter_replay_shows_progress_and_says_what_failed_again(platform, receiver, tmp_path):
    key = await platform.tenant()
    healed = receiver.behave("/healed", [(500, 0), (500, 0), (500, 0), (200, 0)])
    broken = receiver.behave("/broken", [(500, 0)])
    await endpoint(platform, key, healed, event_types=["order.*"], retry_policy={"max_retries": 0})
    await endpoint(platform, key, broken, event_types=["invoice.*"], retry_policy={"max_retries": 0})
    for event_type in ("order.created", "order.created", "order.created", "invoice.paid"):
        status, _, _ = await platform.call(
            "POST", "/v1/events", token=key, json={"event_type": event_type, "payload": {}}
        )
        assert status == 202
    for _ in range(200):
        status, dead, _ = await platform.call("GET", "/v1/dead-letters", token=key)
        if len(dead["data"]) == 4:
            break
        await asyncio.sleep(0.05)
    assert len(dead["data"]) == 4

    env = cli_env(tmp_path, platform.base, key)
    code, out, err = await run_cli("dead-letters", "replay", "--since", "1h", env=env, timeout=120)
    # 3 delivered, 1 dead again: said, and the exit code is not 0.
    assert code == 1, out + err
    assert "Replayed 4: 3 delivered, 1 failed again" in out, out
    bar = err.strip().splitlines()
    assert bar[-1].startswith("[") and "4/4" in bar[-1], err
    assert len(receiver.requests["/healed"]) == 6

    code, out, err = await run_cli("dead-letters", "replay", "--since", "1h", "--json", env=env, timeout=120)
    assert code == 1 and json.loads(out)["failed_again"] == 1, out + err
    code, out, err = await run_cli("dead-letters", "replay", "--since", "1h", "--until", "2h", env=env)
    assert code == 2 and "--since must be before --until" in err


async def test_logs_of_the_local_stack(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ingest.log").write_text("one\ntwo\nthree\n")
    (logs / "dispatcher.log").write_text("alpha\n")
    env = cli_env(tmp_path)
    code, out, err = await run_cli("logs", "ingest", "dispatcher", "-n", "2", env=env)
    assert code == 0, err
    assert out.splitlines() == ["ingest     | two", "ingest     | three", "dispatcher | alpha"]
    code, _, err = await run_cli("logs", "nope", env=env)
    assert code == 2 and "no such service" in err
    code, _, err = await run_cli("logs", env=cli_env(tmp_path / "empty"))
    assert code == 2 and "make up" in err
