"""Seed 000 (the tourism agent's inbound receiver), replayed verbatim against the real stack.

Its senders sign `json.dumps(payload)` with HMAC-SHA256, hex, in `x-webhook-signature`, and
post to `{ROOT_PATH}/webhook/receive`; monitoring reads `{ROOT_PATH}/webhook/health`. The
source is the shipped example (docs/examples/seed-000-source.json), so the example cannot rot.
"""

import hashlib
import hmac
import json

import pytest

from helpers import REPO, IngestClient
from hookyard_common.core.settings import Settings, ingest_address
from hookyard_ingest.receiving.sources import SourceCreate

EXAMPLE = REPO / "docs" / "examples" / "seed-000-source.json"
SECRET = "tourism-shared-secret"
ROOT_PATH = "/api/webhook"

#: The seed's "Formato de Payload", as documented.
RESERVATION = {
    "type": "reservation_update",
    "content": "La reservación ha sido confirmada",
    "user_id": "123456",
    "timestamp": "2023-11-12T15:30:45.123Z",
    "metadata": {"reservation_id": "res_abc123", "status": "confirmed"},
}
PROMO = {
    "type": "promo",
    "content": "20% en tours",
    "metadata": {"promo_id": "p1", "valid_until": "2023-12-31", "discount": 20},
}


def example_source() -> dict:
    return {**json.loads(EXAMPLE.read_text()), "secrets": [SECRET]}


def signed(payload: dict, secret: str = SECRET) -> tuple[str, dict]:
    """The seed's `send_webhook`: the body it posts and its headers."""
    payload_json = json.dumps(payload)
    signature = hmac.new(secret.encode(), payload_json.encode(), hashlib.sha256).hexdigest()
    return payload_json, {"Content-Type": "application/json", "x-webhook-signature": signature}


def test_the_shipped_example_expresses_the_seed_message_types():
    schema = SourceCreate.model_validate(example_source()).payload_schema
    assert schema is not None
    assert schema.problems(RESERVATION) is None and schema.problems(PROMO) is None
    assert schema.problems({"type": "user_info", "content": "hola", "user_id": "u1"}) is None
    wrong = [
        ({**PROMO, "metadata": {**PROMO["metadata"], "discount": "20%"}}, "metadata.discount"),
        ({**PROMO, "metadata": {**PROMO["metadata"], "discount": True}}, "metadata.discount"),
        ({**PROMO, "metadata": {**PROMO["metadata"], "valid_until": "2023-02-30"}}, "metadata.valid_until"),
        ({**PROMO, "metadata": {**PROMO["metadata"], "valid_until": "next week"}}, "metadata.valid_until"),
        ({**RESERVATION, "timestamp": "2023-11-12T25:30:00Z"}, "timestamp"),
        ({**RESERVATION, "timestamp": 1699803045}, "timestamp"),
        ({**RESERVATION, "metadata": ["res_abc123"]}, "metadata.reservation_id"),  # not an object: not found
    ]
    for payload, field in wrong:
        problems = schema.problems(payload)
        assert problems is not None and problems["field"] == field, (payload, problems)
    missing = schema.problems({"type": "promo", "content": "x", "metadata": {"promo_id": "p1"}})
    assert missing is not None and missing["missing"] == ["metadata.valid_until", "metadata.discount"]


def test_the_seed_deployment_variables_choose_the_address():
    defaults = Settings(http_host="127.0.0.1", ingest_port=8000)
    assert ingest_address({}, defaults) == ("127.0.0.1", 8000)
    assert ingest_address({"PORT": "8080"}, defaults) == ("127.0.0.1", 8080)  # Cloud Run
    seed = {"WEBHOOK_HOST": "0.0.0.0", "WEBHOOK_PORT": "9000", "PORT": "8080"}
    assert ingest_address(seed, defaults) == ("0.0.0.0", 9000)
    ours = {**seed, "HOOKYARD_HTTP_HOST": "10.0.0.5", "HOOKYARD_INGEST_PORT": "7000"}
    assert ingest_address(ours, defaults) == ("10.0.0.5", 7000)
    with pytest.raises(SystemExit):
        ingest_address({"PORT": "http"}, defaults)


async def test_seed_000_senders_and_monitoring_work_unchanged(start_ingest, start_dispatcher):
    ingest = await start_ingest(root_path=ROOT_PATH)
    await start_dispatcher()
    sender = IngestClient(ingest.base, ingest.settings.model_copy(update={"root_path": ""}), ingest.session)
    key = await ingest.tenant("tourism")
    status, source, _ = await ingest.call("POST", "/v1/sources", token=key, json=example_source())
    assert status == 201, source
    assert source["path_alias"] == "/webhook" and source["response_style"] == "envelope"

    # "Con ROOT_PATH" through a proxy that keeps the prefix, and "Default" through one that strips it.
    for path in (f"{ROOT_PATH}/webhook/receive", "/webhook/receive"):
        body, headers = signed(RESERVATION)
        status, answer, _ = await sender.call("POST", path, data=body, headers=headers)
        assert status == 200, answer
        assert answer["success"] is True and answer["data"]["status"] == "accepted"
    for path in (f"{ROOT_PATH}/webhook/health", "/webhook/health"):
        status, answer, _ = await sender.call("GET", path)
        assert (status, answer["success"]) == (200, True), answer

    logged = await ingest.wait_for_messages(key, 2)
    assert {m["source_id"] for m in logged} == {source["id"]}

    # The seed's refusals, in its envelope and in Hookyard's error shape alike.
    body, headers = signed(RESERVATION, secret="not-the-secret")
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 401 and answer["success"] is False and answer["error"]["code"] == "invalid_signature"
    body, headers = signed({**PROMO, "metadata": {**PROMO["metadata"], "discount": "20%"}})
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 400 and answer["error"]["code"] == "invalid_field_types", answer
    assert answer["error"]["invalid"] == [{"field": "metadata.discount", "expected": "number"}]
    body, headers = signed({"type": "promo", "content": "x", "metadata": {"promo_id": "p1"}})
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 400 and answer["error"]["missing"] == ["metadata.valid_until", "metadata.discount"]
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=b"x" * 1_048_577, headers=headers)
    assert status == 413 and answer["success"] is False
    status, answer, allow = await ingest.call("GET", "/webhook/receive")
    assert status == 405 and allow["Allow"] == "POST"
    status, answer, _ = await ingest.call("POST", "/nowhere/receive", data=body, headers=headers)
    assert status == 404 and answer["error"]["code"] == "not_found"


async def test_an_alias_is_one_source_per_deployment_and_a_path_only(ingest, start_dispatcher):
    await start_dispatcher()
    key_a, key_b = await ingest.tenant("a"), await ingest.tenant("b")
    source = await ingest.source(key_a, "hmac", secrets=[SECRET], path_alias="/webhook")
    # Another tenant cannot take, move onto or reach into tenant A's alias.
    status, answer, _ = await ingest.call(
        "POST", "/v1/sources", token=key_b, json={"name": "b", "provider": "hmac", "path_alias": "/webhook"}
    )
    assert status == 409 and answer["error"]["code"] == "path_alias_taken", answer
    other = await ingest.source(key_b, "hmac", secrets=[SECRET])
    status, answer, _ = await ingest.call(
        "PATCH", f"/v1/sources/{other['id']}", token=key_b, json={"path_alias": "/webhook"}
    )
    assert status == 409, answer
    status, _, _ = await ingest.call("PATCH", f"/v1/sources/{source['id']}", token=key_b, json={"path_alias": None})
    assert status == 404
    for bad in ("webhook", "/in", "/v1/hooks", "/webhook/../in", "/a b", "/" + "x" * 65, "/ping/x", "", "/"):
        status, answer, _ = await ingest.call(
            "PATCH", f"/v1/sources/{other['id']}", token=key_b, json={"path_alias": bad}
        )
        assert status == 400 and answer["error"]["field"] == "path_alias", (bad, answer)
    body, headers = signed(PROMO)
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 200 and answer == {"id": answer["id"], "status": "accepted"}  # the standard style

    # Released (null clears it), the alias answers 404 at once and another tenant may hold it.
    status, _, _ = await ingest.call("PATCH", f"/v1/sources/{source['id']}", token=key_a, json={"path_alias": None})
    assert status == 200
    status, _, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 404
    status, moved, _ = await ingest.call(
        "PATCH", f"/v1/sources/{other['id']}", token=key_b, json={"path_alias": "/webhook"}
    )
    assert status == 200 and moved["path_alias"] == "/webhook"
    status, answer, _ = await ingest.call("POST", "/webhook/receive", data=body, headers=headers)
    assert status == 200, answer
    [message] = await ingest.wait_for_messages(key_b, 1)
    assert message["source_id"] == other["id"]


def test_an_alias_may_not_start_where_a_wing_of_the_route_table_does():
    # The reserved first segments are a copy of the wings' prefixes (path_aliases.py cannot import
    # app.py): a new wing must be reserved too, or an alias could sit where its routes are.
    from hookyard_ingest.app import WINGS
    from hookyard_ingest.receiving.path_aliases import RESERVED_SEGMENTS, alias_problem

    firsts = {wing.prefix.strip("/").split("/")[0] for wing in WINGS}
    assert firsts <= RESERVED_SEGMENTS, firsts - RESERVED_SEGMENTS
    assert all(alias_problem(f"/{first}/hooks") is not None for first in firsts)
