"""How an attempt reads an endpoint's answer: a redirect is a failure and is not followed, only
the first 64 KiB of a response are read and kept, and a timeout or a refused connection is
recorded with the reason the docs name (`timeout`, `connection_error`)."""

import asyncio

from helpers import attempts_of, endpoint, publish
from hookyard_cli.devstack import free_port

CAP = 65_536


async def endless():
    """A response body that never ends: read to its end, it would hold the attempt until its timeout."""
    while True:
        yield b"y" * 65_536
        await asyncio.sleep(0)


async def test_redirects_caps_timeouts_and_refusals_are_recorded_as_documented(platform, receiver):
    key = await platform.tenant()
    once = {"event_types": ["user.*"], "retry_policy": {"max_retries": 0}}
    moved = await endpoint(
        platform, key, receiver.behave("/moved", [(302, 0, {"Location": receiver.url("/target")})]), **once
    )
    big = await endpoint(platform, key, receiver.behave("/big", [(200, 0, None, b"x" * 1024 * 1024)]), **once)
    stream = await endpoint(platform, key, receiver.behave("/stream", [(200, 0, None, endless())]), **once)
    slow = await endpoint(platform, key, receiver.behave("/slow", [(200, 3)]), timeout_seconds=0.5, **once)
    closed = await endpoint(platform, key, f"http://127.0.0.1:{free_port()}/nobody", **once)
    event_id = await publish(platform, key, "user.created")

    attempts = {a["endpoint_id"]: a for a in await attempts_of(platform, key, event_id, 5, timeout=10)}
    assert (attempts[moved["id"]]["outcome"], attempts[moved["id"]]["reason"]) == ("failure", "http_302")
    for capped in (big, stream):
        assert (attempts[capped["id"]]["outcome"], attempts[capped["id"]]["status"]) == ("success", 200)
        assert len(attempts[capped["id"]]["response_body"]) == CAP
    assert attempts[stream["id"]]["latency_ms"] < 5_000, "the endless answer was read past the cap"
    assert (attempts[slow["id"]]["outcome"], attempts[slow["id"]]["reason"]) == ("failure", "timeout")
    assert 400 <= attempts[slow["id"]]["latency_ms"] < 2_500
    assert (attempts[closed["id"]]["outcome"], attempts[closed["id"]]["reason"]) == ("failure", "connection_error")
    await asyncio.sleep(0.3)
    assert "/target" not in receiver.requests, "the redirect was followed"
