"""Tenant isolation, generated from the route table: another tenant's key on every tenant route.

Tenant A makes one object of each kind the tenant API names in a path
(a source, an endpoint, an own event, a received event, a dead letter, a
replay, a monitor, an API key) and a ping key. Tenant B then calls every
operation of the tenant wing (`app.TENANT_API`): a route naming one of A's
objects must answer 404 with a JSON error, never 403, 2xx or 5xx, and the
same error as for a made-up id (nothing says A's object exists); any other
route B may use for itself; and after every call A reads all of its objects
back unchanged. B's lists and searches, filtered by A's ids or not, show
nothing of A's, while A's own show something (so the check can fail).
Then B calls every route whose body names an object (`endpoint_id`,
`target_endpoint_id`, `source_ids`) on its own objects with A's ids in
the body: a resend to A's endpoint is 404, and nothing of B's reaches A's
endpoint, nor anything of A's B's endpoint that names A's source.

A route added to the table is covered by itself: the test fails until the
kind of object its path names is in `OBJECTS` and, when it reads a body
without an `example`, its body is in `BODIES`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

from pydantic import ValidationError

from helpers import endpoint, publish
from hookyard_ingest.app import TENANT_API
from hookyard_ingest.openapi.operation import Operation

#: The path segment in front of a path parameter, and which of A's objects it names.
OBJECTS = {
    "sources": "source",
    "endpoints": "endpoint",
    "events": "event",
    "received-events": "received",
    "messages": "received",  # received events' deprecated name
    "dead-letters": "dead_letter",
    "replays": "replay",
    "monitors": "monitor",
    "api-keys": "api_key",
}
#: A body that the route accepts and that would change A's object, for routes whose `Operation` has no example.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/events"): {"event_type": "user.created", "payload": {"by": "B"}},  # a type A's endpoint takes
    ("PATCH", "/sources/{source_id}"): {"name": "taken by B", "allowed_cidrs": ["10.0.0.0/8"]},
    ("PATCH", "/endpoints/{endpoint_id}"): {"url": "https://attacker.example/", "active": False},
    ("POST", "/endpoints/{endpoint_id}/rotate-secret"): {"secret": "whsec_" + "QUJD" * 8, "grace_seconds": 0},
    ("POST", "/events/{event_id}/resend"): {},
    ("POST", "/received-events/{event_id}/resend"): {},
    ("POST", "/messages/{event_id}/resend"): {},
    ("PATCH", "/monitors/{monitor_id}"): {"name": "taken by B", "grace_seconds": 0},
    ("POST", "/api-keys/{key_id}/rotate"): {"expire_in_seconds": 0},
}
#: Routes documented to answer another tenant's object with an empty page rather than a 404
#: (docs/api.md#attempts: "an event of another tenant lists nothing").
EMPTY_FOR_STRANGERS = {f"/{name}/{{event_id}}/attempts" for name in ("events", "received-events", "messages")}
#: In A's payloads, so a delivery of A's data to B shows.
MARK = "only-for-tenant-a"
#: Fields A's reads show that move without anyone changing the object.
VOLATILE = {"last_used_at"}
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
}
OPERATIONS: list[Operation] = list(TENANT_API.operations)


def kinds(operation: Operation) -> list[str]:
    """The kinds of object the operation's path names, in order; KeyError names a kind not in `OBJECTS`."""
    return [OBJECTS[segment] for segment in re.findall(r"([^/]+)/\{[^}]+\}", operation.path)]


def body_of(operation: Operation) -> dict[str, Any] | None:
    if operation.body is None:
        return None
    return BODIES.get((operation.method, operation.path), operation.example)


def path_of(operation: Operation, world: dict[str, str]) -> str:
    names = iter(kinds(operation))
    return TENANT_API.prefix + re.sub(r"\{[^}]+\}", lambda _: world[next(names)], operation.path)


def with_foreign_ids(operation: Operation, world: dict[str, str]) -> dict[str, Any] | None:
    """The least body the operation takes (`{}` when its model allows it) with A's ids in every field that
    names an object (`endpoint_id`, `source_ids`); None when no field does."""
    if operation.body is None:
        return None
    try:
        operation.body.model_validate({})
        body: dict[str, Any] = {}
    except ValidationError:
        body = dict(body_of(operation) or {})
    named = {}
    for name in operation.body.model_fields:
        if match := re.fullmatch(r"(?:\w+_)?(source|endpoint|monitor|event)_id(s?)", name):
            kind, many = match.groups()
            named[name] = [world[kind]] if many else world[kind]
    return {**body, **named} if named else None


def test_every_tenant_route_names_a_known_object_and_has_a_valid_body():
    missing = []
    for operation in OPERATIONS:
        where = f"{operation.method} {operation.path}"
        try:
            kinds(operation)
        except KeyError as unknown:
            missing.append(f"{where}: add the object {unknown} names to OBJECTS")
        if operation.body is not None:
            body = body_of(operation)
            if body is None:
                missing.append(f"{where}: add a body to BODIES")
            else:
                operation.body.model_validate(body)
    assert not missing, missing
    assert {kind for operation in OPERATIONS for kind in kinds(operation)} == set(OBJECTS.values())


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


async def eventually(check, what: str, timeout: float = 15.0):
    for _ in range(int(timeout / 0.05)):
        if found := await check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def build_world(platform, receiver, key: str) -> dict[str, str]:
    """One of A's objects of each kind; a dead letter and both logs' records once the dispatcher wrote them."""

    async def made(path: str, body: dict) -> dict:
        status, answer, _ = await platform.call("POST", path, token=key, json=body)
        assert status in (201, 202), (path, answer)
        return answer

    source = await platform.source(key, "none")
    hook = await endpoint(
        platform, key, receiver.behave("/a", [(500, 0)]), event_types=["user.*"], retry_policy={"max_retries": 0}
    )
    event_id = await publish(platform, key, "user.created", {"a": MARK})
    status, received, _ = await platform.call("POST", f"/in/{source['id']}", json={"type": "order.paid", "a": MARK})
    assert status == 200, received
    monitor = await made("/v1/monitors", {"name": "A's backup", "heartbeat_interval_seconds": 3600})
    api_key = await made("/v1/api-keys", {"name": "A's ci"})
    ping_key = await made("/v1/ping-key", {})
    past = {"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}  # replays nothing
    replay = await made("/v1/dead-letters/replay", past)

    async def dead_letter():
        status, letters, _ = await platform.call("GET", "/v1/dead-letters", token=key)
        return status == 200 and letters["data"] and letters["data"][0]["id"]

    world = {
        "source": source["id"],
        "endpoint": hook["id"],
        "event": event_id,
        "received": received["id"],
        "dead_letter": await eventually(dead_letter, "A's dead letter"),
        "replay": replay["replay_id"],
        "monitor": monitor["id"],
        "api_key": api_key["id"],
        "ping_key": ping_key["ping_key"],
        "monitor_token": monitor["token"],
    }
    await eventually(lambda: logged(platform, key, f"/v1/events/{event_id}"), "A's event in the event log")
    await eventually(lambda: logged(platform, key, f"/v1/received-events/{world['received']}"), "A's received event")

    async def attempted():
        return (await platform.call("GET", f"/v1/events/{event_id}/attempts", token=key))[1]["data"]

    await eventually(attempted, "A's attempt recorded")
    return world


async def logged(platform, key: str, path: str) -> bool:
    return (await platform.call("GET", path, token=key))[0] == 200


def reads(world: dict[str, str]) -> list[str]:
    """Everything A reads back to see that nothing changed."""
    return [
        f"/v1/sources/{world['source']}",
        f"/v1/endpoints/{world['endpoint']}",
        f"/v1/endpoints/{world['endpoint']}/secret",
        f"/v1/events/{world['event']}",
        f"/v1/events/{world['event']}/attempts",
        f"/v1/received-events/{world['received']}",
        f"/v1/dead-letters/{world['dead_letter']}",
        f"/v1/dead-letters/replays/{world['replay']}",
        f"/v1/monitors/{world['monitor']}",
        "/v1/api-keys",
        "/v1/ping-key",
    ]


async def snapshot(platform, key: str, world: dict[str, str]) -> dict[str, Any]:
    seen = {}
    for path in reads(world):
        status, body, _ = await platform.call("GET", path, token=key)
        assert status == 200, (path, body)
        seen[path] = scrub(body)
    return seen


def same_error(unknown: dict, foreign: dict, unknown_id: str, foreign_id: str) -> bool:
    """The two refusals are one, but for the id each echoes."""
    return json.dumps(unknown).replace(unknown_id, "ID") == json.dumps(foreign).replace(foreign_id, "ID")


async def call_as(platform, token: str, operation: Operation, world: dict[str, str]):
    headers = UPGRADE if operation.websocket else None
    body = body_of(operation)
    return await platform.call(operation.method, path_of(operation, world), token=token, json=body, headers=headers)


async def test_another_tenants_key_finds_none_of_a_tenants_objects_on_any_route(platform, receiver):
    key, attacker = await platform.tenant("owner"), await platform.tenant("attacker")
    world = await build_world(platform, receiver, key)
    needles = {*world.values(), MARK}
    made_up = {kind: made[:-4] + "Zz9-" for kind, made in world.items()}  # the same shape, no object
    before = await snapshot(platform, key, world)

    # Lists and searches: B's show nothing of A's, filtered by A's ids or not; A's own show something.
    for operation in (o for o in OPERATIONS if o.method == "GET" and not kinds(o) and not o.websocket):
        fields = operation.query.model_fields if operation.query else {}
        filters = {name: world[name.removesuffix("_id")] for name in fields if name.removesuffix("_id") in world}
        for params in ({}, filters):
            status, body, _ = await platform.call(
                "GET", TENANT_API.prefix + operation.path, token=attacker, params=params
            )
            assert status in (200, 404) and isinstance(body, dict), (operation.path, status, body)
            shown = json.dumps(body)
            assert not [n for n in needles if n in shown], (operation.path, params, body)
        status, body, _ = await platform.call("GET", TENANT_API.prefix + operation.path, token=key)
        assert status == 200 and any(n in json.dumps(body) for n in needles), (operation.path, body)

    # Every other route, in table order (so B's own objects, made by its POSTs, exist when B uses them).
    for operation in (o for o in OPERATIONS if not (o.method == "GET" and not kinds(o) and not o.websocket)):
        where = f"{operation.method} {operation.path}"
        status, body, _ = await call_as(platform, attacker, operation, world)
        if operation.path in EMPTY_FOR_STRANGERS:
            assert (status, body["data"]) == (200, []), (where, status, body)
        elif kinds(operation):
            assert status == 404, (where, status, body)
            assert body["error"]["code"].startswith("unknown_"), (where, body)
            # Answered as a made-up id is: nothing tells B that A's object exists.
            _, unknown, _ = await call_as(platform, attacker, operation, made_up)
            assert same_error(unknown, body, made_up[kinds(operation)[-1]], world[kinds(operation)[-1]]), where
        else:
            assert status < 500 and status not in (401, 403), (where, status, body)
        assert await snapshot(platform, key, world) == before, f"{where} by another tenant changed A's objects"

    await attack_with_ids_in_bodies(platform, receiver, attacker, world)
    assert await snapshot(platform, key, world) == before

    # A's API key still works: B's DELETE and rotate did not touch it (the list above shows it, this uses it).
    status, _, _ = await platform.call("GET", "/v1/sources", token=key)
    assert status == 200
    # B's resends and events named A's endpoint and delivered nothing to it, B's bulk replays replayed none
    # of A's dead letters, and B's endpoint naming A's source got none of A's webhooks, sent now: once A's
    # next event reached A's endpoint, the webhook before it in A's lane has been routed too.
    status, _, _ = await platform.call("POST", f"/in/{world['source']}", json={"type": "order.shipped", "a": MARK})
    assert status == 200
    await publish(platform, key, "user.deleted", {"a": MARK})
    await receiver.wait_for("/a", 2)
    await asyncio.sleep(0.5)
    assert len(receiver.requests["/a"]) == 2, receiver.requests["/a"]
    assert not [r for r in receiver.requests.get("/b", []) if MARK.encode() in r["body"]]


async def attack_with_ids_in_bodies(platform, receiver, attacker: str, world: dict[str, str]) -> None:
    """B calls every route whose body names an object, on B's own objects, with A's ids in the body."""
    source = await platform.source(attacker, "none")
    hook = await endpoint(platform, attacker, receiver.url("/b"), event_types=["*"])
    event_id = await publish(platform, attacker, "user.created", {"by": "B"})
    status, received, _ = await platform.call("POST", f"/in/{source['id']}", json={"type": "user.created"})
    assert status == 200
    own = {"source": source["id"], "endpoint": hook["id"], "event": event_id, "received": received["id"]}
    for path in (f"/v1/events/{event_id}", f"/v1/received-events/{received['id']}"):
        await eventually(lambda path=path: logged(platform, attacker, path), f"B's {path} in the log")
    for operation in OPERATIONS:
        body = with_foreign_ids(operation, world)
        if body is None:
            continue
        where = f"{operation.method} {operation.path} naming A's objects in {body}"
        status, answer, _ = await platform.call(operation.method, path_of(operation, own), token=attacker, json=body)
        assert status < 500 and status not in (401, 403), (where, status, answer)
        if "endpoint_id" in body and operation.path != "/dead-letters/replay":  # resend: to that endpoint only
            assert status == 404 and answer["error"]["code"] == "unknown_endpoint", (where, status, answer)
