"""Seed 003 (KREO's local-development tunnel for WhatsApp), its documented flows replayed against the real stack.

The seed registers a callback with Meta (the GET `hub.mode`/`hub.verify_token`/
`hub.challenge` handshake), receives WhatsApp's messages, deliveries and
errors, and tunnels them to a developer's port 8000. In Hookyard: a `meta`
source made with the CLI, Meta's requests verbatim, and `hookyard listen`
forwarding them to a local server with the signature intact.
"""

import hashlib
import hmac
import json

from cli_process import cli_env, run_cli

APP_SECRET = "kreo-app-secret"
VERIFY_TOKEN = "kreo-verify-token"


def whatsapp(**value) -> dict:
    """A WhatsApp Cloud API webhook as Meta sends it (developers.facebook.com, WhatsApp > Webhooks, payloads)."""
    metadata = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [change]}]}


MESSAGE = whatsapp(
    contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
    messages=[
        {
            "from": "16505551234",
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            "timestamp": "1749416383",
            "type": "text",
            "text": {"body": "Does it come in another color?"},
        }
    ],
)
STATUS = whatsapp(
    statuses=[
        {
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA",
            "status": "delivered",
            "timestamp": "1750263773",
            "recipient_id": "16505551234",
        }
    ]
)
ERROR = whatsapp(errors=[{"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}])


def meta_request(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature,
        "User-Agent": "facebookexternalua",
    }


async def test_seed_003_meta_callback_events_and_the_local_tunnel(platform, receiver, tmp_path):
    key = await platform.tenant("kreo")
    env = cli_env(tmp_path, platform.base, key)
    code, out, err = await run_cli(
        "sources", "create", "--provider", "meta", "--secret", APP_SECRET,
        "--option", f"verify_token={VERIFY_TOKEN}", "--json", env=env,
    )  # fmt: skip
    assert code == 0, err
    source = json.loads(out)
    assert source["options"] == {"verify_token": "***"}, "the verify token is a credential: never shown back"
    path = f"/in/{source['id']}"

    # Meta's callback verification (the seed's "Validación de callbacks de Meta").
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    status, body, headers = await platform.call("GET", path, params=query)
    assert (status, body) == (200, "1158201444") and headers["Content-Type"].startswith("text/plain")
    status, body, _ = await platform.call("GET", path, params={**query, "hub.verify_token": "guessed"})
    assert status == 403 and body["error"]["code"], body

    # The developer's machine, as the seed's tunnel to port 8000: `hookyard listen` in the background.
    local = receiver.url("/webhook")
    code, out, err = await run_cli("listen", "--source", source["id"], "--forward-to", local, "--background", env=env)
    assert code == 0 and "in the background" in out, out + err
    try:
        sent = [meta_request(body) for body in (MESSAGE, STATUS, ERROR)]
        for raw, headers in sent:
            status, body, _ = await platform.call("POST", path, data=raw, headers=headers)
            assert status == 200, body
        raw, headers = meta_request(MESSAGE)
        tampered = raw.replace(b"another color", b"a discount")
        status, body, _ = await platform.call("POST", path, data=tampered, headers=headers)
        assert status == 401 and body["error"]["code"], body

        # Messages, deliveries and errors told apart by their event type.
        logged = await platform.wait_for_messages(key, 3)
        assert sorted(m["event_type"] for m in logged) == [
            "meta.whatsapp.errors", "meta.whatsapp.messages", "meta.whatsapp.statuses",
        ]  # fmt: skip

        # Each reached localhost byte for byte, its Meta signature still verifying with the app secret.
        forwarded = await receiver.wait_for("/webhook", 3, timeout=30)
        assert sorted(r["body"] for r in forwarded) == sorted(raw for raw, _ in sent)
        for request in forwarded:
            expected = "sha256=" + hmac.new(APP_SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
            assert request["headers"]["X-Hub-Signature-256"] == expected

        code, out, err = await run_cli("listen", "status", "--json", env=env)
        [state] = json.loads(out)["listeners"]
        assert code == 0 and state["connected"] and state["forwarded"] == 3 and state["last_error"] is None, out

        # A signed test as Meta would send it, from the CLI.
        code, out, err = await run_cli("send-test", "--source", source["id"], "--secret", APP_SECRET, env=env)
        assert code == 0 and "HTTP 200" in out, out + err
        [test] = [m for m in await platform.wait_for_messages(key, 4) if m["id"] not in {m["id"] for m in logged}]
        assert test["event_type"] == "meta.whatsapp.messages" and test["verification"]["verified"]
    finally:
        code, out, err = await run_cli("listen", "stop", env=env)
    assert code == 0 and "Stopped" in out, out + err
    code, out, _ = await run_cli("listen", "status", env=env)
    assert code == 1 and "No listener" in out
