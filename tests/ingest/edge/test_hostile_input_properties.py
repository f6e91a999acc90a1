"""Every route, driven by generated bad requests: no 5xx, a JSON error naming the field, nothing stored.

Hypothesis builds each request from a route's own request model (every field
it has), then breaks it: a field swapped for null, the wrong type, an empty
or huge string, a huge or negative number, non-ASCII digits, a lone
surrogate, nesting past BSON's limit, an extreme date; or the body made
malformed, duplicated keys, invalid UTF-8, the wrong content type, a body
where none is taken; or garbage ids, cursors and query parameters. Requests
go over real HTTP to the real ingest (real RabbitMQ and MongoDB), in batches
of ten; after a batch of refusals, every collection the tenant has is
exactly as before it.

The requests are sent from a thread with blocking clients, because
Hypothesis drives a synchronous function; the ingest serves them on the
test's event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import time
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient

from hookyard_common.core.settings import Settings
from hookyard_common.delivery.endpoints import EndpointCreate
from hookyard_common.monitors.model import MonitorCreate
from hookyard_common.runtime import runner
from hookyard_ingest.api.dead_letters import BulkReplay
from hookyard_ingest.api.endpoints import Rotation
from hookyard_ingest.api.events import EventCreate
from hookyard_ingest.api.messages import Resend
from hookyard_ingest.api.tenants import TenantCreate
from hookyard_ingest.app import create_app
from hookyard_ingest.receiving.sources import SourceCreate

BATCH = 10
EXAMPLES = 200  # x BATCH requests per run
# Written by refused pings on purpose (a failed ping is worth seeing): not state a refusal may not change.
#: Collections that record requests rather than hold state: the checks log, and the rate
#: limiter's counters (refusals are counted too).
LOGS = {"monitor_checks", "rate_counters"}
#: Fields of a stored document that count refusals (a source's refused signatures, records/sources.py).
COUNTERS = {"sources": ("signature_failures", "last_signature_failure_at")}

SPECIAL_TEXT = [
    "",
    " ",
    "\ud800",
    "a\udc00b",
    "x" * 100_000,
    "²",
    "٣",
    "１２",
    "-1",
    "0",
    "9" * 40,
    "1e400",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "2026-13-45T25:61:00Z",
    "null",
    "\x00",
    "../../etc",
    "%00",
    "\u202e",
    "*",
    "a.*.b",
    "whsec_!!",
    "https://",
    "http://[::1",
    "0.0.0.0/0",
]
# Object keys BSON or MongoDB treat specially.
KEYS = ["", "\x00", "a\x00b", "$where", "a.b", "\ud800", "x" * 1000, "_id"]
# For the URL: the request line stays within what the HTTP parser reads (8 KiB).
SHORT_TEXT = [text for text in SPECIAL_TEXT if len(text) < 100]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**31, -1, 0, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(SPECIAL_TEXT),
)


def _nested(depth: int) -> object:
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


HOSTILE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(KEYS)), SCALARS, max_size=4),
    st.integers(min_value=60, max_value=300).map(_nested),
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "application/vnd.x+json",
    "image/png",
    "",
]


def _fields(model) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


class Ids:
    """Real ids made before the run, and garbage in their place."""

    def __init__(self, ids: dict[str, str]):
        self.real = ids
        self.hit: set[tuple[str, str]] = set()  # the routes requests were made for

    def strategy(self, kind: str):
        garbage = st.sampled_from(["x" * 300, "\udcff", "..", "\x00", "null", "²", "src_" + "A" * 40])
        return st.one_of(st.just(self.real[kind]), st.one_of(garbage, st.text(min_size=1, max_size=20)).map(_encoded))


# Every route the ingest serves but the probes (ROOT_PATH is not set), read from the app itself: HEAD too,
# where GET has it (aiohttp adds those routes).
OPS = {route.path for route in runner.ops_routes(runner.Lifecycle("ingest", None, Settings()))}
ROUTES = [
    (route.method, route.resource.canonical)
    for route in create_app(Settings()).router.routes()
    if route.resource is not None and route.resource.canonical not in OPS
]
# The routes that read a JSON body, and the model that reads it.
BODIES = {
    ("POST", "/v1/tenants"): TenantCreate,
    ("POST", "/v1/sources"): SourceCreate,
    ("PATCH", "/v1/sources/{source_id}"): SourceCreate,
    ("POST", "/v1/events"): EventCreate,
    ("POST", "/v1/endpoints"): EndpointCreate,
    ("PATCH", "/v1/endpoints/{endpoint_id}"): EndpointCreate,
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret"): Rotation,
    ("POST", "/v1/messages/{message_id}/resend"): Resend,
    ("POST", "/v1/dead-letters/replay"): BulkReplay,
    ("POST", "/v1/monitors"): MonitorCreate,
    ("PATCH", "/v1/monitors/{monitor_id}"): MonitorCreate,
}
PAGE = ("limit", "cursor")
WINDOW = (*PAGE, "since", "until")
# The query parameters a route reads, by path.
QUERIES = {
    "/v1/sources": PAGE,
    "/v1/endpoints": PAGE,
    "/v1/monitors": (*PAGE, "state"),
    "/v1/messages": (*WINDOW, "source_id"),
    "/v1/dead-letters": (*WINDOW, "endpoint_id"),
    "/v1/metrics": ("hours",),
    "/v1/sources/{source_id}/listen": ("since",),
    "/v1/endpoints/{endpoint_id}/listen": ("since",),
    "/v1/monitors/{monitor_id}/checks": WINDOW,
    "/v1/monitors/{monitor_id}/flips": WINDOW,
    "/v1/monitors/{monitor_id}/incidents": (*PAGE, "state"),
    "/ping/{token}": ("status", "msg", "message"),
    "/ping/{token}/{status}": ("msg",),
    "/in/{source_id}": ("hub.mode", "hub.verify_token", "hub.challenge"),
}
# What fills each path parameter (objects made before the run, or garbage).
PARAMETERS = {"{endpoint_id}": "endpoint", "{monitor_id}": "monitor", "{token}": "token"}


def _kinds(method: str, template: str) -> dict[str, list[str]]:
    """For each path parameter of a route, the kinds of ids it may be given."""
    if method == "DELETE" or template.endswith("/regenerate-token"):
        # Real objects stay, so the rest of the run can reach them.
        return {name: ["garbage"] for name in re.findall(r"\{\w+\}", template)}
    kinds = {name: [PARAMETERS.get(name, "garbage")] for name in re.findall(r"\{\w+\}", template)}
    if "{source_id}" in kinds:
        kinds["{source_id}"] = ["source", "none_source", "meta_source"] if template.startswith("/in/") else ["source"]
    return kinds


def _cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


# Per query parameter, the values most likely to break its parsing; any text besides.
QUERY_VALUES = {
    "limit": ["²", "٣", "１２", "-1", "0", "101", "9" * 40, "1e2", " 5", "", "0x10"],
    "cursor": [
        _cursor(["9999-12-31T23:59:59-23:59", "x"]),
        _cursor(["0001-01-01T00:00:00+14:00", "x"]),
        _cursor(["2026-01-01T00:00:00", "x"]),
        _cursor(["2026-01-01T00:00:00Z", {"$gt": ""}]),
        _cursor([1, 2, 3]),
        _cursor({"$where": "1"}),
        "!!!",
        "A" * 600,
        "",
    ],
    "since": ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "2026-01-01T00:00:00", "yesterday", "²"],
    "hours": ["-1", "0", "1e400", "nan", "inf", "²", "99999", ""],
}
QUERY_VALUES["until"] = QUERY_VALUES["since"]


def query_value(name: str):
    return st.one_of(
        st.sampled_from(QUERY_VALUES.get(name, SHORT_TEXT)), st.sampled_from(SHORT_TEXT), st.text(max_size=20)
    )


def _encoded(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# A valid body for each model, every field given: mutating one part of it reaches the checks
# that only run once everything around that part is valid.
VALID = {
    TenantCreate: {"name": "t"},
    SourceCreate: {
        "name": "s",
        "provider": "hmac",
        "secrets": ["0123456789abcdef"],
        "options": {"signature_header": "X-Sig"},
        "schema": {"required": ["a"], "types": {"t": ["b.c"]}, "type_field": "type", "allow_unknown_types": True},
        "allowed_cidrs": ["10.0.0.0/8"],
        "max_body_bytes": 1000,
        "rate_limit_per_ip": 10,
        "rate_limit_per_source": 10,
    },
    EventCreate: {
        "event_type": "a.b",
        "payload": {"x": [1, {"y": "z"}]},
        "idempotency_key": "k",
        "severity": "low",
        "context": {"c": 1},
        "target_endpoint_id": "ep_x",
        "headers": {"X-A": "b"},
        "occurred_at": "2026-01-01T00:00:00Z",
    },
    EndpointCreate: {
        "url": "https://example.com/h",
        "description": "d",
        "event_types": ["a.*"],
        "source_ids": ["src_x"],
        "headers": {"X-A": "b"},
        "auth": {"type": "api_key", "token": "t", "header_name": "X-Key"},
        "timeout_seconds": 5,
        "retry_policy": {
            "max_retries": 3,
            "initial_delay_seconds": 1,
            "backoff_multiplier": 2,
            "max_delay_seconds": 60,
            "jitter": True,
        },
        "rate_limit_per_second": 5,
        "max_in_flight": 2,
        "active": True,
        "signature_format": "standard",
        "payload_format": "standard",
    },
    Rotation: {"grace_seconds": 60, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    Resend: {"endpoint_id": "ep_x"},
    BulkReplay: {"endpoint_id": "ep_x", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
    MonitorCreate: {
        "name": "m",
        "heartbeat_interval_seconds": 60,
        "grace_seconds": 10,
        "secret": "0123456789abcdef0",
        "alerts_enabled": True,
        "payload_mapping": {
            "status_field": "s.t",
            "values": {"ok": "up"},
            "default_status": "down",
            "message_field": "m",
        },
    },
}


def _parts(value: object, path: tuple = ()):
    """The path of every part of a JSON value, containers and leaves."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _parts(child, (*path, key))


def _mutated(draw, valid: dict) -> object:
    """`valid` with one part replaced by a hostile value, removed, or given a hostile key."""
    body = json.loads(json.dumps(valid))
    path = draw(st.sampled_from(list(_parts(body))[1:]))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["replace", "replace", "remove", "hostile key"]))
    if how == "replace":
        parent[path[-1]] = draw(HOSTILE)
    elif how == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(HOSTILE)
    return body


@st.composite
def json_body(draw, model) -> bytes:
    """A valid body with one part of it made hostile, or a body of `model`'s fields with
    hostile values; then perhaps the whole body broken."""
    if draw(st.booleans()):
        body = _mutated(draw, VALID[model])
    else:
        fields = _fields(model)
        body = {
            name: draw(HOSTILE) for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique=True))
        }
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    breakage = draw(
        st.sampled_from(["none", "none", "none", "duplicate", "truncate", "bad_utf8", "array", "scalar", "empty"])
    )
    if breakage == "duplicate" and body:
        key = json.dumps(next(iter(body)))
        raw = raw[:-1] + f", {key}: 1}}".encode()
    elif breakage == "truncate":
        raw = raw[: draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))]
    elif breakage == "bad_utf8":
        raw = raw[:1] + b"\xff\xfe" + raw[1:]
    elif breakage == "array":
        raw = b"[" + raw + b"]"
    elif breakage == "scalar":
        raw = json.dumps(draw(SCALARS)).encode("utf-8", "surrogatepass")
    elif breakage == "empty":
        raw = b""
    return raw


@st.composite
def raw_body(draw) -> bytes:
    """What a provider or a pinging system might send: JSON with hostile values, form, bytes."""
    kind = draw(st.sampled_from(["json", "json", "form", "bytes", "none"]))
    if kind == "json":
        value = draw(
            st.one_of(HOSTILE, st.fixed_dictionaries({"status": HOSTILE, "message": HOSTILE, "metadata": HOSTILE}))
        )
        return json.dumps(value).encode("utf-8", "surrogatepass")
    if kind == "form":
        pairs = draw(st.lists(st.tuples(st.text(max_size=8), st.sampled_from(SPECIAL_TEXT[:12])), max_size=4))
        return "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in pairs).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    return b""


def bad_request(ids: Ids, routes: list[tuple[str, str]]):
    @st.composite
    def build(draw) -> tuple[str, str, bytes, dict[str, str]]:
        method, template = draw(st.sampled_from(routes))
        model, params = BODIES.get((method, template)), QUERIES.get(template, ())
        path = template.replace("{status}", _encoded(draw(st.sampled_from(["up", "down", "UP", "²", "sideways"]))))
        for name, kinds in _kinds(method, template).items():
            path = path.replace(name, draw(ids.strategy(draw(st.sampled_from(kinds)))))
        names = draw(st.lists(st.sampled_from(params), min_size=1, max_size=3, unique=True)) if params else []
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            names.append(draw(st.sampled_from(["unknown", "limt", "Limit"])))
        query = {name: draw(query_value(name)) for name in names}
        if query:
            path += "?" + "&".join(f"{_encoded(k)}={_encoded(v)}" for k, v in query.items())
        if model is not None:
            body = draw(json_body(model))
        elif method in ("GET", "DELETE", "HEAD") and not draw(st.booleans()):
            body = b""  # a body where none is taken, half the time
        else:
            body = draw(raw_body())
        headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES))}
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            headers["Content-Encoding"] = "gzip"
        token = ids.real["admin"] if template == "/v1/tenants" else ids.real["key"]
        headers["Authorization"] = f"Bearer {token}"
        ids.hit.add((method, template))
        return method, path, body, headers

    return build()


def send(port: int, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        connection.close()


def snapshot(db) -> dict:
    return {
        name: sorted(
            db[name].find({}, {field: 0 for field in COUNTERS.get(name, ())} or None), key=lambda d: str(d["_id"])
        )
        for name in sorted(db.list_collection_names())
        if name not in LOGS
    }


def settled(db, timeout: float = 5.0) -> dict:
    """The state once what accepted requests started in the background (a ping's flip,
    incident and alert are settled after its answer) has finished."""
    deadline = time.monotonic() + timeout
    current = snapshot(db)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        current, previous = snapshot(db), current
        if current == previous:
            break
    return current


def check_answer(request: tuple, status: int, data: bytes, content_type: str) -> None:
    method, path, body, _ = request
    where = f"{method} {path[:200]} body={body[:200]!r}"
    assert status < 500, f"{status} for {where}: {data[:300]!r}"
    if status < 400 or method == "HEAD":
        return
    assert content_type.startswith("application/json"), f"{status} without JSON for {where}: {data[:200]!r}"
    error = json.loads(data)["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), where
    if status == 400:
        assert isinstance(error.get("field"), str), f"400 without a field for {where}: {error}"


def drive(port: int, mongo_uri: str, db_name: str, ids: Ids) -> dict[str, int]:
    """Run the property; how many requests were sent, and after how many batches the state was compared."""
    db = MongoClient(mongo_uri)[db_name]
    counts = {"sent": 0, "state checked": 0}
    state = {"before": snapshot(db)}

    def run(routes: list[tuple[str, str]], examples: int) -> None:
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(batch=st.lists(bad_request(ids, routes), min_size=BATCH, max_size=BATCH))
        def property_(batch):
            accepted = False
            for request in batch:
                status, data, content_type = send(port, *request)
                counts["sent"] += 1
                check_answer(request, status, data, content_type)
                # A read changes nothing; a ping that was accepted does (it is recorded), seed 004's GET heartbeat too.
                pinged = request[1].startswith(("/ping/", "/webhooks/"))
                accepted |= status < 400 and (request[0] not in ("GET", "HEAD") or pinged)
            if accepted:
                state["before"] = settled(db)
                return
            counts["state checked"] += 1
            assert snapshot(db) == state["before"], f"a batch of refusals changed the stored state: {batch}"

        property_()

    try:
        run(ROUTES, EXAMPLES)
        # The draw over all routes can miss one now and then: those get a few batches of their own.
        for route in [r for r in ROUTES if r not in ids.hit]:
            run([route], 3)
    finally:
        db.client.close()
    return counts


@pytest.mark.slow
async def test_generated_bad_requests_on_every_route(start_ingest, infra):
    # Limits and the failure budget lifted: each generated request must reach the validation it probes.
    ingest = await start_ingest(
        rate_limit_per_ip=10**9,
        rate_limit_per_source=10**9,
        rate_limit_per_ip_total=10**9,
        ping_rate_limit_per_ip=10**9,
        ping_rate_limit_per_token=10**9,
        failure_limit_per_ip=10**9,
    )
    key = await ingest.tenant()
    status, endpoint, _ = await ingest.call(
        "POST", "/v1/endpoints", token=key, json={"url": "https://example.com/hook"}
    )
    assert status == 201
    status, monitor, _ = await ingest.call("POST", "/v1/monitors", token=key, json={"name": "m"})
    assert status == 201
    meta = await ingest.source(key, "meta", secrets=["app-secret"], options={"verify_token": "vt"})
    ids = Ids(
        {
            "key": key,
            "admin": ingest.settings.admin_token,
            "source": (await ingest.source(key, "hmac"))["id"],
            "none_source": (await ingest.source(key, "none"))["id"],
            "meta_source": meta["id"],
            "endpoint": endpoint["id"],
            "monitor": monitor["id"],
            "token": monitor["token"],
            "garbage": "gone_" + "0" * 20,
        }
    )
    counts = await asyncio.to_thread(drive, ingest.settings.ingest_port, infra.mongo_uri, ingest.settings.mongo_db, ids)
    assert counts["sent"] >= EXAMPLES * BATCH
    assert ids.hit == set(ROUTES), f"routes never driven: {set(ROUTES) - ids.hit}"
    # Most batches are all refusals, so the stored state is compared after them.
    assert counts["state checked"] >= EXAMPLES // 4, counts
