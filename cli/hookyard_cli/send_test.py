"""`hookyard send-test`: one signed test event, to see a source or an endpoint work end to end.

    hookyard send-test --source src_... [--secret S]   a webhook as its provider would sign it, to its URL
    hookyard send-test --endpoint ep_... [--wait 10]   a `hookyard.test` event delivered to that endpoint only

A source's test goes through the public URL like any provider's request
(the ingest does not know it is a test: it checks the signature, names the
event and logs it), so `listen` and the endpoints see it too. An endpoint's
test is a tenant event with `target_endpoint_id`: the dispatcher signs and
delivers it as it does every event, and the first attempt's outcome is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime

import aiohttp

from hookyard_cli import exit_codes
from hookyard_cli.api import Api, ConnectionFailure, add_connection_flags, api_key, failure, ingest_url, json_or_none
from hookyard_cli.provider_signing import signed_test

TEST_EVENT_TYPE = "hookyard.test"


async def to_source(api: Api, source_id: str, secret: str | None) -> int:
    source = await api.call("GET", f"/v1/sources/{source_id}")
    body, headers = signed_test(source["provider"], secret, source.get("options") or {})
    try:
        async with api.session.post(source["url"], data=body, headers=headers) as response:
            text = await response.text()
    except aiohttp.ClientError as exc:
        raise ConnectionFailure(f"cannot reach the source's URL {source['url']}: {exc}") from None
    if response.status >= 400:
        raise failure(response.status, json_or_none(text), text)
    print(f"Sent a signed {source['provider']} test to {source['url']}: HTTP {response.status} {text[:200]}")
    return exit_codes.OK


async def to_endpoint(api: Api, endpoint_id: str, wait: float) -> int:
    payload = {"message": "a test from hookyard send-test", "sent_at": datetime.now(UTC).isoformat()}
    body = {"event_type": TEST_EVENT_TYPE, "payload": payload, "target_endpoint_id": endpoint_id}
    await api.call("GET", f"/v1/endpoints/{endpoint_id}")  # an unknown endpoint: its 404 now, not silence
    event = await api.call("POST", "/v1/events", json=body)
    print(f"Published {event['id']} ({TEST_EVENT_TYPE}) to {endpoint_id}.")
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        attempts = (await api.call("GET", f"/v1/events/{event['id']}/attempts"))["data"]
        if attempts:
            first = attempts[-1]
            print(f"Attempt 1: {first['outcome']}, HTTP {first['status']}, {first['latency_ms']} ms ({first['url']}).")
            return exit_codes.OK if first["outcome"] == "success" else exit_codes.API
        await asyncio.sleep(0.5)
    if wait:
        print(f"No attempt yet after {wait:g} s: see `GET /v1/events/{event['id']}/attempts`.")
    return exit_codes.OK


async def _main(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(ingest_url(args.url), api_key(args.api_key), session)
        if args.source:
            return await to_source(api, args.source, args.secret or os.environ.get("HOOKYARD_SOURCE_SECRET"))
        return await to_endpoint(api, args.endpoint, args.wait)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("send-test", help="send a signed test event to a source or an endpoint")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="a source id: a request signed as its provider signs, to its URL")
    which.add_argument("--endpoint", help="an endpoint id: a hookyard.test event delivered to it alone")
    parser.add_argument("--secret", help="the source's signing secret (default: $HOOKYARD_SOURCE_SECRET)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the endpoint's attempt (10)")
    add_connection_flags(parser)
    parser.set_defaults(run=run)
