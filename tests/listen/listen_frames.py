"""What the listen tests share: a signed provider body, and the next frame a listener gets."""

import hashlib
import hmac
import json

import aiohttp

from hookyard_common import listen_wire

SECRET = "listen-test-secret"


def signed(body: dict) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    return raw, {
        "X-Webhook-Signature": hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


async def next_frame(ws, timeout: float = 10.0, skip=("heartbeat",)):
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame = listen_wire.parse(message.data)
        if frame.type not in skip:
            return frame
