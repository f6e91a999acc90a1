"""The endpoints API: secrets, rotation with a grace period, validation, isolation between tenants."""

import time

import pytest
from pymongo import AsyncMongoClient
from standardwebhooks.webhooks import Webhook

from hookyard_common.delivery import signing
from hookyard_common.delivery.endpoints import Endpoint, RetryPolicy
from hookyard_common.schemas import utcnow


async def test_endpoint_lifecycle_secret_and_masked_auth(ingest):
    key = await ingest.tenant()
    status, created, _ = await ingest.call(
        "POST",
        "/v1/endpoints",
        token=key,
        json={
            "url": "https://receiver.example/hooks",
            "event_types": ["user.*", "payment.completed"],
            "headers": {"X-API-Version": "v2"},
            "auth": {"type": "bearer", "token": "sk_live_123456789"},
            "retry_policy": {
                "max_retries": 5,
                "initial_delay_seconds": 1,
                "backoff_multiplier": 2.0,
                "max_delay_seconds": 300,
                "jitter": True,
            },
            "timeout_seconds": 10,
        },
    )
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["signature_format"] == "standard"
    assert created["auth"] == {"type": "bearer", "token": "***"}
    assert created["active"] is True and created["max_in_flight"] == 8
    endpoint_id = created["id"]

    status, shown, _ = await ingest.call("GET", f"/v1/endpoints/{endpoint_id}", token=key)
    assert "secret" not in shown and "sk_live_123456789" not in str(shown)
    status, secret, _ = await ingest.call("GET", f"/v1/endpoints/{endpoint_id}/secret", token=key)
    assert secret == {"secret": created["secret"], "previous_secrets_valid": 0}

    status, patched, _ = await ingest.call(
        "PATCH", f"/v1/endpoints/{endpoint_id}", token=key, json={"active": False, "event_types": ["*"]}
    )
    assert status == 200 and patched["active"] is False and patched["event_types"] == ["*"]

    other = await ingest.tenant("other")
    status, body, _ = await ingest.call("GET", f"/v1/endpoints/{endpoint_id}", token=other)
    assert (status, body["error"]["code"]) == (404, "unknown_endpoint")
    status, _, _ = await ingest.call("DELETE", f"/v1/endpoints/{endpoint_id}", token=key)
    assert status == 204


async def test_rotation_keeps_the_old_secret_signing_for_the_grace_period(ingest, settings):
    key = await ingest.tenant()
    status, created, _ = await ingest.call("POST", "/v1/endpoints", token=key, json={"url": "https://r.example/"})
    status, rotated, _ = await ingest.call(
        "POST", f"/v1/endpoints/{created['id']}/rotate-secret", token=key, json={"grace_seconds": 3600}
    )
    assert status == 200 and rotated["secret"] != created["secret"]
    status, secret, _ = await ingest.call("GET", f"/v1/endpoints/{created['id']}/secret", token=key)
    assert secret == {"secret": rotated["secret"], "previous_secrets_valid": 1}

    # What the dispatcher will sign with: both, so receivers on either secret verify.
    client = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    doc = await client[settings.mongo_db]["endpoints"].find_one({"_id": created["id"]})
    await client.close()
    endpoint = Endpoint.model_validate(doc)
    secrets = endpoint.signing_secrets(utcnow())
    assert secrets == [rotated["secret"], created["secret"]]
    headers = signing.standard_headers(secrets, "msg_1", int(time.time()), b"{}")
    Webhook(created["secret"]).verify(b"{}", headers)
    Webhook(rotated["secret"]).verify(b"{}", headers)


async def test_endpoint_validation_names_the_problem(ingest):
    key = await ingest.tenant()
    cases = [
        {"url": "ftp://files.example/"},
        {"url": "https://r.example/", "event_types": ["user created"]},
        {"url": "https://r.example/", "headers": {"webhook-signature": "forged"}},
        {"url": "https://r.example/", "auth": {"type": "digest", "token": "x"}},
        {"url": "https://r.example/", "retry_policy": {"max_retries": 3, "schedule_seconds": [1]}},
        {"url": "https://r.example/", "timeout_seconds": 0},
        {"url": "https://r.example/", "surprise": 1},
    ]
    for fields in cases:
        status, body, _ = await ingest.call("POST", "/v1/endpoints", token=key, json=fields)
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (fields, body)
    status, body, _ = await ingest.call(
        "POST", "/v1/endpoints", token=key, json={"url": "https://r.example/", "secret": "whsec_%%%"}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_secret")
    # Seed 001's legacy format accepts its plain shared secrets.
    status, body, _ = await ingest.call(
        "POST",
        "/v1/endpoints",
        token=key,
        json={"url": "https://r.example/", "secret": "super-secret-key-123", "signature_format": "legacy"},
    )
    assert status == 201 and body["secret"] == "super-secret-key-123"


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        ({}, [5, 300, 1800, 7200, 18000, 36000, 36000]),
        (
            {"max_retries": 5, "initial_delay_seconds": 1, "backoff_multiplier": 2.0, "max_delay_seconds": 10},
            [1, 2, 4, 8, 10],
        ),
        ({"schedule_seconds": [0.01, 0.05]}, [0.01, 0.05]),
        ({"max_retries": 0}, []),
    ],
)
def test_retry_policy_delays(policy, delays):
    assert RetryPolicy.model_validate(policy).delays() == delays
