"""Which failures are outages (held) and which are bad messages (parked): pure rules, no I/O."""

import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from pydantic import ValidationError
from pymongo.errors import AutoReconnect, NotPrimaryError, OperationFailure, ServerSelectionTimeoutError

from hookyard_common.broker.outages import is_dependency_failure, unusable
from hookyard_common.schemas import Event


@pytest.mark.parametrize(
    "exc",
    [
        ServerSelectionTimeoutError("no server"),
        AutoReconnect("reset"),
        NotPrimaryError("stepped down"),
        ChannelInvalidStateError("closed"),
        TimeoutError(),
        ConnectionRefusedError(),
        OSError("name resolution"),
    ],
)
def test_dependency_failures_are_outages(exc):
    assert is_dependency_failure(exc)


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyError("x"), TypeError(), OperationFailure("bad query", 2)])
def test_other_failures_are_not(exc):
    assert not is_dependency_failure(exc)


def test_an_outage_raised_as_the_cause_of_another_error_counts():
    try:
        try:
            raise AutoReconnect("reset")
        except AutoReconnect as inner:
            raise RuntimeError("while writing") from inner
    except RuntimeError as outer:
        assert is_dependency_failure(outer)


def test_a_refusal_names_the_first_problem():
    with pytest.raises(ValidationError) as caught:
        Event.from_bytes(b'{"tenant_id": "t", "event_type": "a", "headers": {"Connection": "close"}}')
    reason = str(unusable("a valid event", caught.value))
    assert reason.startswith("not a valid event: 1 errors; headers:") and "Connection" in reason
