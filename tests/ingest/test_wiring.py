"""The ingest's wiring (app.py): one aiohttp sub-app per wing, each behind its own middlewares.

aiohttp runs a sub-app's middlewares for any path under its prefix, matched
or not, so these pin what a client sees at every wing: an unknown path or
method stays a JSON 404 or 405 (with `Allow`) before readiness or
credentials are asked; a route answers 503 "starting" until the ingest's
parts exist, then asks its wing's credentials, and only its own wing's (an
admin token is no API key, nor the other way round). With ROOT_PATH the
same answers come with and without the prefix.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hookyard_common.runtime import runner
from hookyard_ingest.app import create_app

ADMIN = "test-admin-token"
# Answered alike while starting and once ready, with no credentials: aiohttp's own 404 and 405, in JSON.
UNROUTED = [
    ("GET", "/v1/nope", 404, None),
    ("PUT", "/v1/nope", 404, None),
    ("GET", "/v1/tenants/", 404, None),
    ("GET", "/v1/admin/nope", 404, None),
    ("GET", "/in/src_x/more", 404, None),
    ("GET", "/ping/k/slug/fail/more", 404, None),
    ("PUT", "/v1/tenants", 405, "GET,HEAD,POST"),
    ("PUT", "/v1/admin/parked", 405, "GET,HEAD"),
    ("PUT", "/v1/sources", 405, "GET,HEAD,POST"),
    ("POST", "/v1/sources/x/listen", 405, "GET"),
    ("PUT", "/in/src_x", 405, "GET,POST"),
    ("PUT", "/ping/t", 405, "GET,HEAD,POST"),
]
# Routes: 503 "starting" until the parts exist, then each wing's answer to no credentials.
ROUTED = [
    ("GET", "/v1/tenants", 401, "unauthorized"),
    ("GET", "/v1/admin/parked", 401, "unauthorized"),
    ("GET", "/v1/sources", 401, "unauthorized"),
    ("GET", "/v1/sources/x/listen", 401, "unauthorized"),
    ("GET", "/in/src_x", 404, "unknown_source"),
    ("GET", "/ping/t", 404, "unknown_monitor"),
    ("GET", "/ping/pk_x/slug/fail", 404, "unknown_monitor"),
    ("GET", "/badge/x.svg", 404, "unknown_badge"),
]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def expected(prefixes: list[str], *, ready: bool) -> dict:
    """Per (prefix, method, path): the status, error code and Allow header."""
    answers = {(m, path): (status, HTTP_CODES[status], allow) for m, path, status, allow in UNROUTED}
    for method, path, status, code in ROUTED:
        answers[method, path] = (status, code, None) if ready else (503, "starting", None)
    return {(prefix, *request): answer for prefix in prefixes for request, answer in answers.items()}


ROOT_PATHS = ["", "/hooks"]


async def answers(base: str, prefixes: list[str]) -> dict:
    """What the ingest answers to every request of the tables, as `expected` puts it."""
    found = {}
    async with aiohttp.ClientSession() as session:
        for prefix in prefixes:
            for method, path, *_ in UNROUTED + ROUTED:
                async with session.request(method, base + prefix + path) as response:
                    code = (await response.json())["error"]["code"]
                    found[prefix, method, path] = (response.status, code, response.headers.get("Allow"))
    return found


@pytest.mark.parametrize("root_path", ROOT_PATHS)
async def test_wings_while_starting(settings, root_path):
    # No database to reach: the ingest stays in start-up for the whole test.
    config = settings.model_copy(
        update={
            "admin_token": ADMIN,
            "root_path": root_path,
            "mongo_uri": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
            "connect_attempts": 1_000,
        }
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(runner.serve_app(create_app(config), "ingest", config, stop))
    base = f"http://127.0.0.1:{config.ingest_port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/readyz") as response:
                        assert response.status == 503
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        prefixes = list(dict.fromkeys(["", root_path]))
        assert await answers(base, prefixes) == expected(prefixes, ready=False)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)


@pytest.mark.parametrize("root_path", ROOT_PATHS)
async def test_wings_once_ready(start_ingest, root_path):
    ingest = await start_ingest(root_path=root_path)
    prefixes = list(dict.fromkeys(["", root_path]))
    assert await answers(ingest.base, prefixes) == expected(prefixes, ready=True)


async def test_each_wing_asks_its_own_credentials(ingest):
    key = await ingest.tenant()
    for path, token, status, message in (
        ("/v1/tenants", key, 401, "invalid admin token"),
        ("/v1/admin/parked", key, 401, "invalid admin token"),
        ("/v1/sources", ADMIN, 401, "invalid API key"),
        ("/v1/tenants", ADMIN, 200, None),
        ("/v1/admin/parked", ADMIN, 200, None),
        ("/v1/sources", key, 200, None),
    ):
        answered, body, _ = await ingest.call("GET", path, token=token)
        assert answered == status, (path, body)
        if message:
            assert body["error"]["message"] == message, path
