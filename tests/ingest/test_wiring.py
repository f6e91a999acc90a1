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
# (method, path, answer while starting, answer once ready): (status, error code, Allow).
NO_CREDENTIALS = [
    ("GET", "/v1/nope", (404, "not_found", None), (404, "not_found", None)),
    ("PUT", "/v1/nope", (404, "not_found", None), (404, "not_found", None)),
    ("GET", "/v1/tenants/", (404, "not_found", None), (404, "not_found", None)),
    ("GET", "/v1/admin/nope", (404, "not_found", None), (404, "not_found", None)),
    ("GET", "/in/src_x/more", (404, "not_found", None), (404, "not_found", None)),
    ("GET", "/ping/t/fail/more", (404, "not_found", None), (404, "not_found", None)),
    ("PUT", "/v1/tenants", (405, "method_not_allowed", "GET,HEAD,POST"), (405, "method_not_allowed", "GET,HEAD,POST")),
    ("PUT", "/v1/admin/parked", (405, "method_not_allowed", "GET,HEAD"), (405, "method_not_allowed", "GET,HEAD")),
    ("PUT", "/v1/sources", (405, "method_not_allowed", "GET,HEAD,POST"), (405, "method_not_allowed", "GET,HEAD,POST")),
    ("POST", "/v1/sources/x/listen", (405, "method_not_allowed", "GET"), (405, "method_not_allowed", "GET")),
    ("PUT", "/in/src_x", (405, "method_not_allowed", "GET,POST"), (405, "method_not_allowed", "GET,POST")),
    ("PUT", "/ping/t", (405, "method_not_allowed", "GET,HEAD,POST"), (405, "method_not_allowed", "GET,HEAD,POST")),
    ("GET", "/v1/tenants", (503, "starting", None), (401, "unauthorized", None)),
    ("GET", "/v1/admin/parked", (503, "starting", None), (401, "unauthorized", None)),
    ("GET", "/v1/sources", (503, "starting", None), (401, "unauthorized", None)),
    ("GET", "/v1/sources/x/listen", (503, "starting", None), (401, "unauthorized", None)),
    ("GET", "/in/src_x", (503, "starting", None), (404, "unknown_source", None)),
    ("GET", "/ping/t", (503, "starting", None), (404, "unknown_monitor", None)),
]
ROOT_PATHS = ["", "/hooks"]


async def answers(base: str, prefixes: list[str]) -> dict:
    """Per (prefix, method, path) of the table: the status, error code and Allow header."""
    found = {}
    async with aiohttp.ClientSession() as session:
        for prefix in prefixes:
            for method, path, *_ in NO_CREDENTIALS:
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
        found = await answers(base, prefixes)
        assert found == {(p, m, path): starting for p in prefixes for m, path, starting, _ in NO_CREDENTIALS}
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)


@pytest.mark.parametrize("root_path", ROOT_PATHS)
async def test_wings_once_ready(start_ingest, root_path):
    ingest = await start_ingest(root_path=root_path)
    prefixes = list(dict.fromkeys(["", root_path]))
    found = await answers(ingest.base, prefixes)
    assert found == {(p, m, path): ready for p in prefixes for m, path, _, ready in NO_CREDENTIALS}


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
