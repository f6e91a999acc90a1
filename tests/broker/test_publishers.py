"""Who may publish what onto the events exchange: pure rules, no I/O."""

import pytest

from hookyard_cli import broker_account
from hookyard_common.broker import publishers
from hookyard_common.broker.tenant_accounts import TenantAccount
from hookyard_common.operational_events import OPERATIONAL, operational_event
from hookyard_common.schemas import Event, Inbound

SERVICES = frozenset({"hookyard"})
INBOUND = Inbound(
    provider="none",
    method="POST",
    url="http://x/in/src_1",
    headers=[],
    body="{}",
    media_type="application/json",
    client_ip="127.0.0.1",
    signature_scheme="none",
    dedup_key="k-1",
)
PLAIN = Event(tenant_id="ten_a", event_type="user.created", payload={})
FROM_SOURCE = Event(tenant_id="ten_a", event_type="x", source_id="src_1", inbound=INBOUND)
OPERATIONAL_EVENT = operational_event("ten_a", "endpoint.disabled", {"endpoint_id": "ep_1"})


@pytest.mark.parametrize("user_id", [None, "ten_a", "hookyard"])
def test_a_tenants_own_plain_event_is_accepted_from_it_or_a_service(user_id):
    assert publishers.refusal(PLAIN, "ten_a.user.created", user_id, SERVICES) is None


@pytest.mark.parametrize("event", [FROM_SOURCE, OPERATIONAL_EVENT])
def test_ingest_only_fields_are_accepted_from_services_only(event):
    assert publishers.refusal(event, "ten_a.x", "hookyard", SERVICES) is None
    for tenant_or_anonymous in ("ten_a", None):
        reason = publishers.refusal(event, "ten_a.x", tenant_or_anonymous, SERVICES)
        assert reason is not None and "only Hookyard's services" in reason


def test_each_ingest_only_field_is_named():
    assert publishers.ingest_only_fields(FROM_SOURCE) == ["source_id", "inbound"]
    assert publishers.ingest_only_fields(OPERATIONAL_EVENT) == [f"context.{OPERATIONAL}"]
    assert publishers.ingest_only_fields(PLAIN) == []


def test_routing_key_body_and_user_must_name_one_tenant():
    assert (
        publishers.refusal(PLAIN, "ten_b.user.created", "hookyard", SERVICES)
        == "tenant_id does not match the routing key"
    )
    assert publishers.refusal(PLAIN, "ten_ab.user.created", None, SERVICES) is not None  # a prefix is not a tenant
    assert "may not publish as tenant" in publishers.refusal(PLAIN, "ten_a.user.created", "ten_b", SERVICES)


def test_a_tenant_account_writes_only_its_own_routing_keys():
    account = TenantAccount("ten_a-b")
    assert account.user == "ten_a-b"
    assert account.permissions() == {"configure": "^$", "write": "^hookyard\\.events$", "read": "^$"}
    assert account.topic_permissions() == {"exchange": "hookyard.events", "write": "^ten_a\\-b\\.", "read": "^$"}
    # The CLI states the same patterns (it installs without hookyard_common).
    assert broker_account.permissions() == tuple(account.permissions()[k] for k in ("configure", "write", "read"))
    topic = account.topic_permissions()
    assert broker_account.topic_permissions("ten_a-b") == (topic["exchange"], topic["write"], topic["read"])
    commands = broker_account.rabbitmqctl("ten_a-b", "/")
    assert commands[2] == "rabbitmqctl set_topic_permissions -p / ten_a-b hookyard.events '^ten_a\\-b\\.' '^$'"


def test_the_cli_prints_the_account_of_a_tenant(capsys):
    from hookyard_cli.main import main

    assert main(["tenants", "broker-account", "ten_q", "--vhost", "prod"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == broker_account.rabbitmqctl("ten_q", "prod")
    assert printed[1] == "rabbitmqctl set_permissions -p prod ten_q '^$' '^hookyard\\.events$' '^$'"
