"""What `/in` keeps of a request: a multipart/form-data and a text/plain body stored and forwarded
as they came, and the sender's credentials (`Authorization`, `Cookie`, `X-Api-Key`) stored nowhere."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import bson
import urllib3

from helpers import endpoint

MAILGUN_KEY = "mailgun-signing-key"
#: Credentials a sender might send along; none may be kept.
CREDENTIALS = {
    "Authorization": "Bearer sender-token-6f1d",
    "cookie": "session=cookie-value-93ab",
    "X-API-KEY": "api-key-value-27c4",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0LTQ0ZTE=",
}


def mailgun_form() -> tuple[bytes, str]:
    """An inbound-route post as Mailgun makes it: multipart, the signature in form fields, a file."""
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    fields = {
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
        "sender": "cliente@example.com",
        "subject": "Reserva confirmada ✓",
        "attachment-1": ("factura.pdf", b"%PDF-1.4 \x00\xff binary", "application/pdf"),
    }
    return urllib3.encode_multipart_formdata(fields)


async def logged(platform, key, source_id) -> dict:
    [summary] = await platform.wait_for_messages(key, 1, source_id=source_id)
    status, message, _ = await platform.call("GET", f"/v1/received-events/{summary['id']}", token=key)
    assert status == 200, message
    return message


async def test_multipart_and_text_bodies_are_stored_and_forwarded_as_they_came(platform, receiver):
    key = await platform.tenant()
    mailgun = await platform.source(key, "mailgun", secrets=[MAILGUN_KEY])
    plain = await platform.source(key, "none")
    await endpoint(platform, key, receiver.url("/mail"), source_ids=[mailgun["id"]])
    await endpoint(platform, key, receiver.url("/text"), source_ids=[plain["id"]])
    form, form_type = mailgun_form()
    text = "reserva r-1: confirmada\nñandú ✓".encode()

    status, answer, _ = await platform.call(
        "POST", f"/in/{mailgun['id']}", headers={"Content-Type": form_type}, data=form
    )
    assert status == 200, answer
    status, answer, _ = await platform.call(
        "POST", f"/in/{plain['id']}", headers={"Content-Type": "text/plain; charset=utf-8"}, data=text
    )
    assert status == 200, answer

    for source, path, body, content_type, event_type in (
        (mailgun, "/mail", form, form_type, "mailgun.inbound"),
        (plain, "/text", text, "text/plain; charset=utf-8", "webhook.received"),
    ):
        [delivered] = await receiver.wait_for(path, 1)
        assert delivered["body"] == body and delivered["headers"]["Content-Type"] == content_type
        message = await logged(platform, key, source["id"])
        assert message["event_type"] == event_type
        assert base64.b64decode(message["body_base64"]) == body
        assert dict((k.lower(), v) for k, v in message["headers"])["content-type"] == content_type
    assert message["body"] == text.decode()


async def test_credentials_sent_to_a_source_are_stored_nowhere(platform, receiver, store):
    key = await platform.tenant()
    source = await platform.source(key, "none")
    await endpoint(platform, key, receiver.url("/relay"))
    headers = {"Content-Type": "application/json", "X-Request-Id": "kept-7", **CREDENTIALS}
    status, answer, _ = await platform.call("POST", f"/in/{source['id']}", headers=headers, data=b'{"type": "a"}')
    assert status == 200, answer

    message = await logged(platform, key, source["id"])
    names = {name.lower() for name, _ in message["headers"]}
    assert "x-request-id" in names and not names & {name.lower() for name in CREDENTIALS}
    [delivered] = await receiver.wait_for("/relay", 1)
    secrets = [value.encode() for value in CREDENTIALS.values()]
    assert not [s for s in secrets if s in json.dumps(message).encode() or s in repr(delivered).encode()]
    for name in await store.db.list_collection_names():
        async for doc in store[name].find():
            assert not [s for s in secrets if s in bson.encode(doc)], f"a sender's credential is stored in {name}"
