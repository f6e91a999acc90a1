"""`hookyard login` profiles in the user's config directory, and `hookyard send-test` to sources and endpoints."""

import json
import tomllib

from standardwebhooks.webhooks import Webhook

from cli_process import cli_env, run_cli
from helpers import endpoint

#: Providers the CLI signs for, with a secret their sources accept (standard_webhooks': generated).
SIGNED = {
    "hmac": "s3cr3t-hmac",
    "standard_webhooks": None,
    "stripe": "whsec_stripe_test",
    "github": "gh-secret",
    "shopify": "shopify-secret",
    "slack": "slack-signing-secret",
    "none": None,
}


async def test_login_keeps_a_url_and_key_per_profile_readable_only_by_its_owner(platform, tmp_path):
    key_a, key_b = await platform.tenant("a"), await platform.tenant("b")
    env = cli_env(tmp_path)  # no URL, no key: only what login saves
    code, out, err = await run_cli("login", "--url", platform.base, "--api-key", key_a, env=env)
    assert code == 0 and "profile 'default'" in out, out + err
    code, _, err = await run_cli("login", "--url", platform.base, "--api-key", key_b, "--profile", "b", env=env)
    assert code == 0, err
    code, _, err = await run_cli("login", "--url", platform.base, "--api-key", "hy_typo", "--profile", "c", env=env)
    assert code == 4 and "HTTP 401" in err, err

    config = tmp_path / "xdg-config/hookyard/config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    profiles = tomllib.loads(config.read_text())["profiles"]
    assert profiles == {
        "default": {"url": platform.base, "api_key": key_a},
        "b": {"url": platform.base, "api_key": key_b},
    }

    # Each profile acts as its own tenant.
    code, out, err = await run_cli("sources", "create", "--provider", "none", "--name", "mine", "--json", env=env)
    assert code == 0, err
    source = json.loads(out)
    _, listed, _ = await platform.call("GET", "/v1/sources", token=key_a)
    assert [s["id"] for s in listed["data"]] == [source["id"]]
    # Tenant b's profile cannot reach a's source; HOOKYARD_PROFILE chooses as --profile does.
    code, _, err = await run_cli("send-test", "--source", source["id"], env={**env, "HOOKYARD_PROFILE": "b"})
    assert code == 4 and "HTTP 404" in err, err
    code, _, err = await run_cli("send-test", "--source", source["id"], "--profile", "b", env=env)
    assert code == 4 and "HTTP 404" in err, err
    # The variable still wins over the profile.
    code, _, err = await run_cli("send-test", "--source", source["id"], env={**env, "HOOKYARD_API_KEY": key_b})
    assert code == 4, err
    code, out, err = await run_cli("send-test", "--source", source["id"], env=env)
    assert code == 0 and "HTTP 200" in out, out + err


async def test_send_test_signs_as_each_provider_and_the_ingest_verifies_it(platform, tmp_path):
    key = await platform.tenant()
    env = cli_env(tmp_path, platform.base, key)
    sources = {}
    for provider, secret in SIGNED.items():
        source = await platform.source(key, provider, **({"secrets": [secret]} if secret else {}))
        sources[provider] = source
        given = secret or (source.get("secrets") or [None])[0]
        code, out, err = await run_cli(
            "send-test", "--source", source["id"], *(["--secret", given] if given else []), env=env
        )
        assert code == 0 and "HTTP 200" in out, f"{provider}: {out}{err}"
    logged = await platform.wait_for_messages(key, len(SIGNED))
    by_source = {m["source_id"]: m for m in logged}
    for provider, source in sources.items():
        verified = by_source[source["id"]]["verification"]["verified"]
        assert verified is (provider != "none"), provider
    # A wrong secret is refused by the ingest: the CLI says so with the API's exit code.
    code, _, err = await run_cli("send-test", "--source", sources["github"]["id"], "--secret", "wrong", env=env)
    assert code == 4 and "HTTP 401" in err, err
    code, _, err = await run_cli("send-test", "--source", sources["hmac"]["id"], env=env)
    assert code == 2 and "signing secret is needed" in err, err


async def test_send_test_to_an_endpoint_delivers_a_signed_event_to_it_alone(platform, receiver, tmp_path):
    key = await platform.tenant()
    target = await endpoint(platform, key, receiver.url("/target"))
    await endpoint(platform, key, receiver.url("/other"))
    code, out, err = await run_cli("send-test", "--endpoint", target["id"], env=cli_env(tmp_path, platform.base, key))
    assert code == 0 and "Attempt 1: success, HTTP 200" in out, out + err
    [request] = await receiver.wait_for("/target", 1)
    delivered = Webhook(target["secret"]).verify(request["body"], request["headers"])
    assert delivered["type"] == "hookyard.test" and delivered["data"]["message"] == "a test from hookyard send-test"
    assert "/other" not in receiver.requests
