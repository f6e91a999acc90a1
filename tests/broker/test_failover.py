"""Several broker addresses in AMQP_URL: how they are read, and the first that answers is used."""

import pytest

from hookyard_cli import stack_status
from hookyard_cli.devstack import free_port
from hookyard_common.broker import failover, queue_stats
from hookyard_common.broker.connection import Broker


def test_later_addresses_take_the_first_ones_login_vhost_and_query():
    listed = failover.addresses("amqp://hy:s3cret@rabbit-0:5672/prod?heartbeat=5, rabbit-1:5673,rabbit-2")
    assert [str(url) for url in listed] == [
        "amqp://hy:s3cret@rabbit-0:5672/prod?heartbeat=5",
        "amqp://hy:s3cret@rabbit-1:5673/prod?heartbeat=5",
        "amqp://hy:s3cret@rabbit-2/prod?heartbeat=5",
    ]
    assert queue_stats.vhost_of("amqp://hy:s3cret@rabbit-0/prod,rabbit-1") == "prod"
    assert len(failover.addresses("amqp://guest:guest@127.0.0.1:5672/")) == 1


@pytest.mark.parametrize(
    "listed",
    [
        "amqp://hy:s3cret@rabbit-0:5672/prod?heartbeat=5, rabbit-1:5673,rabbit-2",
        "amqp://guest:guest@127.0.0.1:5672/",
        "amqps://u:p@a/v,amqps://u:p@b:5671/v",
    ],
)
def test_the_cli_reads_the_list_as_the_services_do(listed):
    # `hookyard status` may not import hookyard_common (it installs on its own): its own reading.
    assert stack_status.broker_addresses(listed) == list(failover.addresses(listed))


@pytest.mark.parametrize(
    "listed", ["amqp://a:x@h1/v,amqp://b:x@h2/v", "amqp://a:x@h1/v,amqp://a:x@h2/other", "amqp://h1/,amqp://a:x@h2/"]
)
def test_addresses_that_log_in_differently_are_refused(listed):
    # Every publish carries the user as user_id: a node logging in as another user would refuse it.
    with pytest.raises(ValueError, match="same user and vhost"):
        failover.addresses(listed)


async def test_a_dead_first_address_is_passed_over(amqp_url):
    dead = failover.primary(amqp_url).with_port(free_port())  # nothing listens there
    listed = f"{dead},{amqp_url}"
    broker = await Broker.connect(listed, (200,))
    try:
        assert broker.is_connected
        assert broker.connection.url.port != failover.primary(listed).port
        await broker.publish(b"{}", routing_key="nobody", exchange="", mandatory=False)
    finally:
        await broker.close()
