"""The optional access log: one structured record a request, with the trace's ids, and
nothing a client made up copied into it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from helpers import Lines


@pytest.fixture
def access() -> Iterator[Lines]:
    lines, logger = Lines(), logging.getLogger("hookyard.access")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(lines)


async def test_each_request_is_logged_once_with_its_route_and_trace(start_ingest, access, spans):
    ingest = await start_ingest(access_log=True)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"X-Request-Id": "req-42", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    status, _, _ = await ingest.call("GET", "/v1/sources/src_made_up?x=1", token="nope", headers=headers)
    assert status == 401
    status, _, _ = await ingest.call("GET", "/no/such/place", headers={"X-Request-Id": "\u00e9" * 3})
    assert status == 404
    first, second = access.entries[-2:]
    assert (first["method"], first["route"], first["status"]) == ("GET", "/v1/sources/{source_id}", 401)
    assert first["request_id"] == "req-42" and first["trace_id"] == trace_id
    assert "src_made_up" not in json.dumps(first)
    assert (second["route"], second["status"]) == ("other", 404) and "request_id" not in second


async def test_off_by_default(ingest, access):
    status, _, _ = await ingest.call("GET", "/healthz")
    assert status == 200 and access.entries == []
