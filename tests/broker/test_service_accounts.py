"""Each service's own broker user, exactly as deploy/k8s/base/rabbitmq-access.yaml grants it, on a real broker.

The four services run as those users (the patterns read from the rendered prod
overlay, on this test's vhost): an event is received, delivered after a retry
and resent, so each one declares, publishes and consumes what it does in
production; and what a user was not granted, the broker refuses.
"""

from __future__ import annotations

import secrets
import sys
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq
import pytest
from yarl import URL

from helpers import REPO, endpoint, publish
from hookyard_common.broker import topology

sys.path.insert(0, str(REPO / "tests" / "deploy"))  # the overlays' renderer, shared with tests/deploy/
from k8s_render import find, render  # noqa: E402

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")


@pytest.fixture
def service_urls(management, amqp_url) -> dict[str, str]:
    """user name -> AMQP URL of each broker User of the prod overlay, with its Permission on this vhost."""
    vhost = quote(urlsplit(amqp_url).path[1:], safe="")
    objects = render("prod")
    tags = {u["metadata"]["name"]: ",".join(u["spec"].get("tags", [])) for u in find(objects, "User")}
    urls, made = {}, []
    for grant in find(objects, "Permission"):
        user = grant["spec"]["userReference"]["name"]
        password = secrets.token_hex(12)
        name = f"{user}-{secrets.token_hex(3)}"  # users are broker-wide: one of its own per test
        management("PUT", f"/api/users/{name}", {"password": password, "tags": tags[user]})
        management("PUT", f"/api/permissions/{vhost}/{name}", grant["spec"]["permissions"])
        made.append(name)
        urls[user] = str(URL(amqp_url).with_user(name).with_password(password))
    yield urls
    for name in made:
        management("DELETE", f"/api/users/{name}")


async def test_the_services_work_as_their_own_users(service_urls, start_ingest, start_consumer, receiver):
    from hookyard_dispatcher.main import setup as dispatcher_setup
    from hookyard_heartbeat.main import setup as heartbeat_setup
    from hookyard_retrier.main import setup as retrier_setup

    fast = {
        "delivery_allowed_cidrs": ("127.0.0.0/8",),
        "retry_tiers_ms": (50, 200, 1_000),
        "retry_min_penalty_seconds": 0.0,
    }
    names = tuple(URL(url).user for url in service_urls.values())  # HOOKYARD_BROKER_SERVICE_USERS, as the pods set it
    fast["broker_service_users"] = names
    ingest = await start_ingest(**fast, amqp_url=service_urls["hookyard-ingest"])
    for name, setup in (("dispatcher", dispatcher_setup), ("retrier", retrier_setup), ("heartbeat", heartbeat_setup)):
        await start_consumer(name, setup, **fast, amqp_url=service_urls[f"hookyard-{name}"])
    key = await ingest.tenant()
    url = receiver.behave("/hook", [(500, 0), (200, 0)])  # the first attempt fails: the retrier delivers
    await endpoint(ingest, key, url)
    event_id = await publish(ingest, key, "order.created", {"n": 1})
    await receiver.wait_for("/hook", 2, timeout=20)
    status, body, _ = await ingest.call("POST", f"/v1/events/{event_id}/resend", token=key)
    assert status in (200, 202), body
    await receiver.wait_for("/hook", 3, timeout=20)


async def refused(url: str, action) -> bool:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await action(channel)
        return False
    except aiormq.exceptions.ChannelAccessRefused:
        return True
    finally:
        await connection.close()


async def test_what_a_user_was_not_granted_is_refused(service_urls, amqp_url):
    connection = await aio_pika.connect(amqp_url)  # the topology, as any service declares it
    async with connection:
        await topology.declare(connection, (200,))

    async def consume(queue: str):
        async def action(channel):
            q = await channel.get_queue(queue, ensure=False)
            await q.consume(lambda message: None)

        return action

    async def declare(channel):
        await channel.declare_queue("other.app.queue", durable=True)

    async def publish_event(channel):
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)
        await exchange.publish(aio_pika.Message(b"{}"), routing_key="ten_1.x")
        await channel.close()  # a refused publish closes the channel: wait for it

    for service in SERVICES:  # each may touch Hookyard's names only
        assert await refused(service_urls[f"hookyard-{service}"], declare)
    assert await refused(service_urls["hookyard-keda"], await consume(topology.DEAD_LETTER_QUEUE))
    assert await refused(service_urls["hookyard-keda"], publish_event)
    # The check is not vacuous: a user is let do what it was granted.
    assert not await refused(service_urls["hookyard-dispatcher"], await consume(topology.DISPATCH_QUEUE))


def management_status(management_url: str, amqp_url: str) -> int:
    """The status of GET /api/queues on the management API as the AMQP URL's user."""
    import base64
    import urllib.error
    import urllib.request

    url = URL(amqp_url)
    credentials = base64.b64encode(f"{url.user}:{url.password}".encode()).decode()
    request = urllib.request.Request(management_url.rstrip("/") + "/api/queues")
    request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_only_keda_reads_the_management_api(service_urls, infra):
    for service in SERVICES:  # no tags: no management API, so no policies, users or other vhosts
        assert management_status(infra.management_url, service_urls[f"hookyard-{service}"]) == 401, service
    assert management_status(infra.management_url, service_urls["hookyard-keda"]) == 200
