"""Outbound signatures verify with the `standardwebhooks` library; filters match as documented."""

import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookyard_common.delivery import event_filter, signing


def test_standard_signature_verifies_with_the_reference_library():
    secret = signing.new_secret()
    body = b'{"type": "user.created", "data": {"id": 1}}'
    now = int(time.time())
    headers = signing.standard_headers([secret], "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "user.created", "data": {"id": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_rotation_both_secrets_verify():
    old, new = signing.new_secret(), signing.new_secret()
    body = b"{}"
    headers = signing.standard_headers([new, old], "msg_2", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_bad_secrets_are_refused():
    with pytest.raises(ValueError):
        signing.secret_key("whsec_not base64!")
    with pytest.raises(ValueError):
        signing.secret_key("whsec_" + "QUJD")  # 3 bytes


def test_legacy_headers_match_seed_001():
    body = b'{"user_id": "usr_12345"}'
    headers = signing.legacy_headers(
        "super-secret-key-123",
        event_id="evt_1",
        event_type="user.created",
        tenant_id="empresa-123",
        timestamp=1700000000,
        body=body,
    )
    expected = "sha256=" + hmac.new(b"super-secret-key-123", body, hashlib.sha256).hexdigest()
    assert headers == {
        "X-Webhook-Signature": expected,
        "X-Event-Type": "user.created",
        "X-Event-ID": "evt_1",
        "X-Tenant-ID": "empresa-123",
        "X-Timestamp": "1700000000",
    }


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "anything.at.all", True),
        ("user.*", "user.created", True),
        ("user.*", "user.profile.updated", True),
        ("user.*", "user", False),
        ("user.*", "users.created", False),
        ("order.*.failed", "order.payment.failed", True),
        ("order.*.failed", "order.failed", False),
        ("order.*.failed", "order.payment.refund.failed", False),
        ("payment.completed", "payment.completed", True),
        ("payment.completed", "payment.completed.twice", False),
        ("*.created", "user.created", True),
        ("*.created", "user.profile.created", False),
    ],
)
def test_filters(pattern, event_type, expected):
    assert event_filter.matches(pattern, event_type) is expected
    assert event_filter.any_matches(["nothing.here", pattern], event_type) is expected
