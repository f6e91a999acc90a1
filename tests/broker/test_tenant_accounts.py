"""A tenant's own RabbitMQ account, restricted as docs/broker.md says, against the real broker.

It publishes its own events, and they are delivered; the broker refuses it
every other tenant's routing keys, `hookyard.changes`, the retry tiers, the
due queue, another `user_id` and any read; what it can publish under its
own key but may not (another tenant's body, a source's fields) the
dispatcher parks. And no tenant can pre-claim another's provider dedup keys.
"""

import asyncio
import json
import secrets
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq
import pytest
from prometheus_client import REGISTRY
from yarl import URL

from helpers import drain_queue
from hookyard_common.broker import parked, topology
from hookyard_common.broker.connection import Broker
from hookyard_common.broker.tenant_accounts import TenantAccount
from hookyard_common.schemas import Event, Inbound


async def _tenant(ingest, name: str) -> tuple[str, str]:
    """(tenant id, API key) of a new tenant."""
    key = await ingest.tenant(name)
    status, body, _ = await ingest.call("GET", "/v1/tenants", token=ingest.settings.admin_token)
    assert status == 200, body
    return next(t["id"] for t in body["data"] if t["name"] == name), key


def _account(management, amqp_url: str, tenant_id: str) -> str:
    """Create the tenant's broker account as documented; its AMQP URL."""
    account, password = TenantAccount(tenant_id), secrets.token_hex(12)
    vhost = quote(urlsplit(amqp_url).path[1:], safe="")
    management("PUT", f"/api/users/{quote(account.user)}", {"password": password, "tags": ""})
    management("PUT", f"/api/permissions/{vhost}/{quote(account.user)}", account.permissions())
    management("PUT", f"/api/topic-permissions/{vhost}/{quote(account.user)}", account.topic_permissions())
    return str(URL(amqp_url).with_user(account.user).with_password(password))


@pytest.fixture
async def tenant_broker(management, amqp_url):
    """Open a connection as a tenant's account; the users are deleted after the test."""
    made, connections = [], []

    async def connect(tenant_id: str) -> aio_pika.abc.AbstractConnection:
        url = _account(management, amqp_url, tenant_id)
        made.append(tenant_id)
        connections.append(await aio_pika.connect(url))
        return connections[-1]

    yield connect
    for connection in connections:
        await connection.close()
    for user in made:
        management("DELETE", f"/api/users/{quote(user)}")


async def _publish(connection, exchange: str, routing_key: str, event: Event, user_id: str | None) -> None:
    async with connection.channel(publisher_confirms=True) as channel:
        target = await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
        message = aio_pika.Message(event.to_bytes(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT, user_id=user_id)
        await target.publish(message, routing_key=routing_key, timeout=10)


async def _refused(connection, exchange: str, routing_key: str, event: Event, user_id: str | None = None) -> str:
    """The broker's refusal of this publish (it closes the channel); fails if it is accepted."""
    with pytest.raises(aiormq.exceptions.ChannelClosed) as refusal:
        await _publish(connection, exchange, routing_key, event, user_id)
    return type(refusal.value).__name__


def _plain(tenant_id: str) -> Event:
    return Event(tenant_id=tenant_id, event_type="order.paid", payload={"n": secrets.token_hex(4)})


def _from_source(tenant_id: str, source_id: str, dedup_key: str) -> Event:
    inbound = Inbound(
        provider="none",
        method="POST",
        url=f"http://x/in/{source_id}",
        headers=[],
        body="{}",
        media_type="application/json",
        client_ip="127.0.0.1",
        signature_scheme="none",
        dedup_key=dedup_key,
    )
    return Event(tenant_id=tenant_id, event_type="order.paid", source_id=source_id, inbound=inbound)


async def test_a_tenant_account_publishes_as_itself_only(platform, receiver, tenant_broker, amqp_url):
    tenant, key = await _tenant(platform, "acme")
    other, _ = await _tenant(platform, "globex")
    status, body, _ = await platform.call("POST", "/v1/endpoints", token=key, json={"url": receiver.url("/acme")})
    assert status == 201, body
    broker = await tenant_broker(tenant)

    # Its own events, with its validated user_id or none, are delivered.
    mine = [_plain(tenant), _plain(tenant)]
    await _publish(broker, topology.EVENTS_EXCHANGE, f"{tenant}.order.paid", mine[0], tenant)
    await _publish(broker, topology.EVENTS_EXCHANGE, f"{tenant}.order.paid", mine[1], None)
    delivered = await receiver.wait_for("/acme", 2)
    assert sorted(json.loads(r["body"])["data"]["n"] for r in delivered) == sorted(e.payload["n"] for e in mine)

    # The broker itself refuses everything else.
    assert (
        await _refused(broker, topology.EVENTS_EXCHANGE, f"{other}.order.paid", _plain(other)) == "ChannelAccessRefused"
    )
    assert await _refused(broker, topology.CHANGES_EXCHANGE, "", _plain(tenant)) == "ChannelAccessRefused"
    for queue in (topology.RETRY_DUE_QUEUE, topology.tier_queue(platform.settings.retry_tiers_ms[0])):
        assert await _refused(broker, "", queue, _plain(tenant)) == "ChannelAccessRefused"
    assert (
        await _refused(broker, topology.EVENTS_EXCHANGE, f"{tenant}.order.paid", _plain(tenant), user_id="guest")
        == "ChannelPreconditionFailed"
    )
    for queue in (topology.DISPATCH_QUEUE, topology.INVALID_QUEUE, topology.DEAD_LETTER_QUEUE):
        channel = await broker.channel()  # closed by the broker's refusal
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await (await channel.get_queue(queue, ensure=False)).get(fail=False)

    # Under its own key, what it may not say is parked by the dispatcher, not delivered.
    spoofed = [_plain(other), _from_source(tenant, "src_x", "k-1")]
    for event in spoofed:
        await _publish(broker, topology.EVENTS_EXCHANGE, f"{tenant}.order.paid", event, tenant)
    parked = await drain_queue(amqp_url, topology.INVALID_QUEUE, expect=2)
    assert sorted(Event.from_bytes(m.body).id for m in parked) == sorted(e.id for e in spoofed)
    assert len(receiver.requests["/acme"]) == 2


def _duplicates() -> float:
    return REGISTRY.get_sample_value("hookyard_inbound_duplicates_total", {"provider": "none"}) or 0


async def test_a_tenant_cannot_preclaim_another_tenants_dedup_key(platform, tenant_broker, amqp_url):
    victim, victim_key = await _tenant(platform, "victim")
    attacker, _ = await _tenant(platform, "attacker")
    source = await platform.source(victim_key, "none")
    broker = await tenant_broker(attacker)

    # The attacker claims the victim source's next provider id, as its own event from that source.
    claim = _from_source(attacker, source["id"], "evt_provider_1")
    await _publish(broker, topology.EVENTS_EXCHANGE, f"{attacker}.order.paid", claim, attacker)
    # Parked; and re-driven by an operator, it goes back as nobody's, so it is parked again.
    service = await Broker.connect(amqp_url, platform.settings.retry_tiers_ms)
    try:
        for _ in range(200):
            if (await parked.look(service))[0]:
                break
            await asyncio.sleep(0.05)
        # The parked copy names the attacker, but carries no broker user_id: no trust to re-drive.
        assert [(p.publisher, p.user_id) for p in await parked.redrive(service, None)] == [(attacker, None)]
    finally:
        await service.close()
    [again] = await drain_queue(amqp_url, topology.INVALID_QUEUE, expect=1)
    assert Event.from_bytes(again.body).id == claim.id and again.user_id is None

    # The provider's real webhook is still logged for the victim; its own retry is still a duplicate.
    before = _duplicates()
    for _ in range(2):
        status, body, _ = await platform.call(
            "POST", f"/in/{source['id']}", json={"type": "order.paid"}, headers={"Idempotency-Key": "evt_provider_1"}
        )
        assert status == 200, body
    [logged] = await platform.wait_for_messages(victim_key, 1)
    assert logged["dedup_key"] == "evt_provider_1"
    for _ in range(200):
        if _duplicates() > before:
            break
        await asyncio.sleep(0.05)
    assert _duplicates() == before + 1


async def test_a_tenant_accounts_event_with_no_lane_takes_the_alternate_exchange(ingest, tenant_broker, amqp_url):
    """The alternate exchange needs no permission of the tenant: with its lane gone, its event
    still reaches the shared dispatch queue."""
    tenant_id, _ = await _tenant(ingest, "laneless")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await (await connection.channel()).queue_delete(topology.lane_queue(tenant_id))
    event = _plain(tenant_id)
    await _publish(await tenant_broker(tenant_id), topology.EVENTS_EXCHANGE, f"{tenant_id}.order.paid", event, None)
    [message] = await drain_queue(amqp_url, topology.DISPATCH_QUEUE, expect=1)
    assert Event.from_bytes(message.body).id == event.id
