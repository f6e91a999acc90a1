"""`hookyard listen`, the real CLI as a process, against a running platform and a local receiver."""

import asyncio
import json
import signal
import time

import aiohttp
import pytest
import stripe
from listen_frames import SECRET, signed
from standardwebhooks.webhooks import Webhook

from cli_process import CliProcess, cli_env, run_cli
from helpers import IngestClient, endpoint, start_service
from hookyard_cli import exit_codes
from hookyard_cli.devstack import free_port

STRIPE_SECRET = "whsec_listen_test"


async def send_stripe(ingest, source_id: str, event_id: str, event_type: str = "payment_intent.succeeded") -> str:
    body = json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": {"amount": 2000}}})
    header = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, int(time.time()))
    status, answer, _ = await ingest.call(
        "POST",
        f"/in/{source_id}",
        data=body.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json", "User-Agent": "Stripe/1.0"},
    )
    assert status == 200, answer
    return answer["id"]


def stripe_ids(requests) -> list[str]:
    """Each request checked by stripe's own library, as the developer's code would."""
    return [
        stripe.Webhook.construct_event(r["body"].decode(), r["headers"]["Stripe-Signature"], STRIPE_SECRET)["id"]
        for r in requests
    ]


@pytest.mark.slow
async def test_stripe_webhook_reaches_localhost_verified_and_a_restart_is_caught_up(
    start_ingest, start_dispatcher, settings, receiver, tmp_path
):
    # Two ingest replicas: providers reach A; the listener is connected to B, a real process restarted mid-test.
    ingest_a = await start_ingest()
    await start_dispatcher(delivery_allowed_cidrs=("127.0.0.0/8",))  # writes the log, delivers as usual
    b_settings = settings.model_copy(update={"ingest_port": free_port(), "admin_token": "unused"})
    b_url = f"http://127.0.0.1:{b_settings.ingest_port}"
    ingest_b = start_service("ingest", b_settings, tmp_path)
    cli = None
    try:
        async with aiohttp.ClientSession() as session:
            await IngestClient(b_url, b_settings, session).wait_ready()
        key = await ingest_a.tenant()
        source = await ingest_a.source(key, "stripe", secrets=[STRIPE_SECRET])
        await endpoint(ingest_a, key, receiver.url("/platform"), event_types=["payment_intent.*"])

        cli = await CliProcess.start(
            "listen",
            "--source",
            source["id"],
            "--forward-to",
            receiver.url("/webhooks"),
            "--json",
            env=cli_env(tmp_path / "cli", b_url, key),
        )
        connected = await cli.wait_for("connected")
        assert connected["target_id"] == source["id"] and not connected["catching_up"]

        first = await send_stripe(ingest_a, source["id"], "evt_1")
        [request] = await receiver.wait_for("/webhooks", 1)
        assert stripe_ids([request]) == ["evt_1"]
        assert request["headers"]["User-Agent"] == "Stripe/1.0"
        line = await cli.wait_for("event")
        assert (line["id"], line["status"], line["replayed"]) == (first, 200, False)
        assert line["event_type"] == "payment_intent.succeeded" and line["latency_ms"] >= 0

        # B restarts: the listener is told, and a message arrives (at A) while it is away.
        ingest_b.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(ingest_b.wait, 30) == 0
        dropped = await cli.wait_for("disconnected")
        assert dropped["code"] == 1012 and "restarting" in dropped["reason"]
        second = await send_stripe(ingest_a, source["id"], "evt_2")
        await ingest_a.wait_for_messages(key, 2)  # in the log, as the dispatcher writes it

        ingest_b = start_service("ingest", b_settings, tmp_path)
        again = await cli.wait_for("connected", timeout=90)
        assert again["catching_up"] and again["since"] is not None
        await receiver.wait_for("/webhooks", 2, timeout=30)
        caught = await cli.wait_for("caught_up", timeout=30)
        # evt_1 was in the catch-up window too: sent again by the ingest, dropped by the CLI.
        assert caught["count"] == 2
        line = await cli.wait_for("event", id=second)
        assert line["replayed"] and line["status"] == 200

        third = await send_stripe(ingest_a, source["id"], "evt_3")
        await cli.wait_for("event", id=third)
        await asyncio.sleep(1.0)
        assert stripe_ids(receiver.requests["/webhooks"]) == ["evt_1", "evt_2", "evt_3"]
        # Listening changed nothing for the platform: the endpoint got every event once.
        platform = await receiver.wait_for("/platform", 3)
        assert len(platform) == 3

        code, err = await cli.stop()
        assert code == 0, err
        summary = cli.lines[-1]
        assert summary["type"] == "summary"
        assert (summary["forwarded"], summary["succeeded"], summary["caught_up"], summary["reconnects"]) == (3, 3, 1, 1)
    finally:
        if cli is not None:
            cli.kill()
        ingest_b.terminate()
        await asyncio.to_thread(ingest_b.wait, 30)


async def test_two_listeners_each_get_every_message_and_strangers_get_a_404(platform, receiver, tmp_path):
    key = await platform.tenant("acme")
    stranger = await platform.tenant("globex")
    source = await platform.source(key, "hmac", secrets=[SECRET])
    await endpoint(platform, key, receiver.url("/platform"), event_types=["order.*"])
    listeners = [
        await CliProcess.start(
            "listen",
            "--source",
            source["id"],
            "--forward-to",
            receiver.url(path),
            "--json",
            env=cli_env(tmp_path / path.strip("/"), platform.base, key),
        )
        for path in ("/one", "/two")
    ]
    try:
        for cli in listeners:
            await cli.wait_for("connected")
        code, out, err = await run_cli(
            "listen",
            "--source",
            source["id"],
            "--forward-to",
            receiver.url("/three"),
            env=cli_env(tmp_path / "stranger", platform.base, stranger),
        )
        assert code == 4 and "no such source" in err and "404" in err, err

        sent = []
        for n in range(3):
            raw, headers = signed({"type": "order.created", "n": n})
            status, body, _ = await platform.call("POST", f"/in/{source['id']}", data=raw, headers=headers)
            assert status == 200
            sent.append(raw)
        for path in ("/one", "/two", "/platform"):
            await receiver.wait_for(path, 3)
        await asyncio.sleep(1.0)
        for path in ("/one", "/two"):
            assert [r["body"] for r in receiver.requests[path]] == sent, path
        assert len(receiver.requests["/platform"]) == 3
        assert "/three" not in receiver.requests
    finally:
        for cli in listeners:
            await cli.stop()


async def test_since_catches_up_on_the_first_connection_and_failures_are_reported(platform, receiver, tmp_path):
    key = await platform.tenant()
    source = await platform.source(key, "stripe", secrets=[STRIPE_SECRET])
    earlier = await send_stripe(platform, source["id"], "evt_before")
    await platform.wait_for_messages(key, 1)
    receiver.behave("/flaky", [(500, 0), (200, 0)])
    cli = await CliProcess.start(
        "listen",
        "--source",
        source["id"],
        "--forward-to",
        receiver.url("/flaky"),
        "--since",
        "10m",
        "--json",
        env=cli_env(tmp_path, platform.base, key),
    )
    try:
        connected = await cli.wait_for("connected")
        assert connected["catching_up"]
        line = await cli.wait_for("event", id=earlier)
        # The app's answer is shown, not retried: the developer decides.
        assert line["replayed"] and line["status"] == 500
        later = await send_stripe(platform, source["id"], "evt_after")
        line = await cli.wait_for("event", id=later)
        assert not line["replayed"] and line["status"] == 200
        await cli.wait_for("caught_up")
        assert stripe_ids(receiver.requests["/flaky"]) == ["evt_before", "evt_after"]
    finally:
        code, _ = await cli.stop()
    summary = cli.lines[-1]
    assert (summary["forwarded"], summary["succeeded"], summary["refused"]) == (2, 1, 1)


async def test_endpoint_mirror_is_signed_like_the_endpoints_own_deliveries(platform, receiver, tmp_path):
    key = await platform.tenant()
    source = await platform.source(key, "stripe", secrets=[STRIPE_SECRET])
    ep = await endpoint(
        platform,
        key,
        receiver.url("/real"),
        event_types=["payment_intent.*", "order.*"],
        auth={"type": "bearer", "token": "sk_live_secret"},
        headers={"X-Api-Version": "v2"},
    )
    cli = await CliProcess.start(
        "listen",
        "--endpoint",
        ep["id"],
        "--forward-to",
        receiver.url("/local"),
        "--json",
        env=cli_env(tmp_path, platform.base, key),
    )
    try:
        hello = await cli.wait_for("connected")
        assert hello["target"] == "endpoint"
        await send_stripe(platform, source["id"], "evt_mirror")
        for event_type in ("order.created", "user.created"):  # the second is not the endpoint's
            status, _, _ = await platform.call(
                "POST", "/v1/events", token=key, json={"event_type": event_type, "payload": {"n": 1}}
            )
            assert status == 202
        local = await receiver.wait_for("/local", 2)
        real = await receiver.wait_for("/real", 2)
        await asyncio.sleep(1.0)
        assert len(receiver.requests["/local"]) == 2
    finally:
        await cli.stop()

    for request in local:
        # The Standard Webhooks library verifies with the endpoint's whsec_ secret.
        Webhook(ep["secret"]).verify(request["body"], request["headers"])
        assert request["headers"]["X-Api-Version"] == "v2"
        assert "Authorization" not in request["headers"], "the endpoint's credential left the platform"
    # The same webhook-id and body as the real delivery (the provider's raw body for the Stripe
    # event, the envelope for the tenant's), so the app's duplicate check behaves the same.
    mirrored = {r["headers"]["webhook-id"]: r["body"] for r in local}
    delivered = {r["headers"]["webhook-id"]: r["body"] for r in real}
    assert mirrored == delivered
    assert sorted(json.loads(body)["type"] for body in mirrored.values()) == [
        "order.created",
        "payment_intent.succeeded",
    ]
    assert all(r["headers"]["Authorization"] == "Bearer sk_live_secret" for r in real)


async def test_an_endpoint_listener_catches_up_on_provider_messages_and_tenant_events(platform, receiver, tmp_path):
    key = await platform.tenant()
    source = await platform.source(key, "stripe", secrets=[STRIPE_SECRET])
    ep = await endpoint(platform, key, receiver.url("/real"), event_types=["payment_intent.*", "order.*"])
    await send_stripe(platform, source["id"], "evt_logged")
    for event_type in ("order.created", "user.created"):
        status, _, _ = await platform.call(
            "POST", "/v1/events", token=key, json={"event_type": event_type, "payload": {"n": 1}}
        )
        assert status == 202
    real = await receiver.wait_for("/real", 2)
    await asyncio.sleep(0.5)  # the event log is written a moment after the delivery
    cli = await CliProcess.start(
        "listen",
        "--endpoint",
        ep["id"],
        "--forward-to",
        receiver.url("/local"),
        "--since",
        "10m",
        "--json",
        env=cli_env(tmp_path, platform.base, key),
    )
    try:
        caught = await cli.wait_for("caught_up")
        assert caught["count"] == 2
        local = await receiver.wait_for("/local", 2)
    finally:
        await cli.stop()
    for request in local:
        Webhook(ep["secret"]).verify(request["body"], request["headers"])
    assert {r["headers"]["webhook-id"] for r in local} == {r["headers"]["webhook-id"] for r in real}
    assert all(line["replayed"] for line in cli.lines if line["type"] == "event")


async def test_the_cli_stops_with_the_api_error_exit_when_its_source_is_deleted(start_ingest, receiver, tmp_path):
    ingest = await start_ingest(source_cache_seconds=0.2)
    key = await ingest.tenant()
    source = await ingest.source(key, "none")
    listen = ("listen", "--source", source["id"], "--forward-to", receiver.url("/local"), "--json")
    cli = await CliProcess.start(*listen, env=cli_env(tmp_path, ingest.base, key))
    try:
        await cli.wait_for("connected")
        status, _, _ = await ingest.call("DELETE", f"/v1/sources/{source['id']}", token=key)
        assert status == 204
        # Close code 4004: no reconnecting to a source that is gone.
        code = await asyncio.wait_for(cli.process.wait(), 15)
    finally:
        _, err = await cli.stop()
    assert code == exit_codes.API and "the source was deleted; nothing more to listen to" in err, err
    assert not [line for line in cli.lines if line["type"] == "disconnected"], cli.lines
