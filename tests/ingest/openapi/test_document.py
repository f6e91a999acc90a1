"""The OpenAPI document is the route table: valid, served, committed, and no wider than the code.

Every (method, path) the app routes is in the document and every path of
the document is routed, at the root and under ROOT_PATH; every error status
an operation documents is one its handler's code can raise; the committed
docs/openapi.json is what the code builds.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from hookyard_common.core.settings import Settings
from hookyard_ingest import app as wiring

COMMITTED = Path(__file__).parents[3] / "docs/openapi.json"
REGENERATE = "make openapi  (.venv/bin/python -m hookyard_ingest.spec > docs/openapi.json)"
#: The runner's probes and scrape: operators' routes, documented in docs/operations.md, not the API.
PROBES = {"/healthz", "/readyz", "/metrics"}
#: The console's page and files (`console/shell.py`): HTML and assets for a browser, not the API; the
#: console's session routes are the API's, and in the document.
CONSOLE_PAGES = {"/console", "/console/", "/console/static/{path}"}
#: Errors the wings answer before any handler (credentials, readiness): `document.py` adds them.
RAISED = re.compile(r"ApiError\(\s*(\d{3})|too_many\(|_too_large\(")


def test_the_document_is_valid_openapi_3_1():
    document = wiring.openapi_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"].keys() == {"tenantKey", "adminToken"}


def test_the_committed_copy_is_what_the_code_builds():
    committed = json.loads(COMMITTED.read_text())
    assert committed == wiring.openapi_document(), f"docs/openapi.json is stale: run {REGENERATE}"


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of `app` and its sub-apps (their paths carry the prefixes),
    HEAD left out (it comes with GET)."""
    found = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:
            found |= routed(info["app"])
            continue
        path = info.get("path", info.get("formatter", ""))
        found |= {(route.method, path) for route in resource if route.method != "HEAD"}
    return found


def documented(document: dict, root: str = "") -> set[tuple[str, str]]:
    return {(method.upper(), root + path) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("root_path", ["", "/hooks"])
def test_every_route_is_documented_and_every_documented_path_served(root_path):
    settings = Settings(root_path=root_path)
    served = routed(wiring.create_app(settings))
    document = wiring.openapi_document(root_path)
    roots = {""} | {root_path}
    expected = {(m, r + p) for r in roots for m, p in documented(document)}
    probes = {(m, p) for m, p in served if p.removeprefix(root_path) in PROBES | CONSOLE_PAGES}
    assert served - probes == expected
    assert document["servers"] == [{"url": root_path or "/"}]


def handler_module(op) -> ModuleType:
    """The module of the class whose method the route's `pick` names on the parts."""
    handler = inspect.unwrap(op.handler)  # an old name's wrapper (edge/deprecation.py) around the route's own
    pick = handler.__closure__[0].cell_contents if handler.__closure__ else None
    if pick is None:  # a handler of its own (the reference's)
        return sys.modules[handler.__module__]

    class Path:
        """Records the attributes `pick` reads: (part, method)."""

        def __init__(self, names: tuple[str, ...] = ()):
            self.names = names

        def __getattr__(self, name: str) -> Path:
            return Path((*self.names, name))

    part, _method = pick(Path()).names
    owner = wiring.Parts.__annotations__[part]
    return sys.modules[getattr(wiring, owner).__module__]


def raisable(module: ModuleType) -> set[int]:
    """Statuses the module's code raises, or the ingest modules it imports raise (limits, bodies)."""
    sources = [inspect.getsource(module)]
    for package, names in re.findall(r"from (hookyard_ingest\.[\w.]+) import ([\w, ]+)", sources[0]):
        imported = importlib.import_module(package)
        modules = [getattr(imported, n) for n in names.split(", ") if inspect.ismodule(getattr(imported, n))]
        sources += [inspect.getsource(m) for m in modules or [imported]]
    statuses = set()
    for source in sources:
        for match in RAISED.finditer(source):
            statuses.add(int(match.group(1)) if match.group(1) else 429 if "many" in match.group(0) else 413)
    return statuses


def test_every_documented_error_is_one_the_handler_can_raise():
    unexplained = {
        (op.method, wing.prefix + op.path, status)
        for wing in wiring.WINGS
        for op in wing.operations
        for status in op.errors
        if status not in raisable(handler_module(op))
    }
    assert not unexplained


async def test_the_document_and_its_page_are_served_without_credentials(start_ingest):
    ingest = await start_ingest(root_path="/hooks")
    for prefix in ("", "/hooks"):
        async with ingest.session.get(f"{ingest.base}{prefix}/v1/openapi.json") as response:
            assert response.status == 200 and response.content_type == "application/json"
            document = await response.json()
        assert document == wiring.openapi_document("/hooks")
        async with ingest.session.get(f"{ingest.base}{prefix}/v1/docs") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        assert "/hooks/v1/endpoints/{endpoint_id}/rotate-secret" in page and "<script" not in page


async def test_the_longest_event_type_is_accepted_and_a_longer_one_named(ingest):
    """Found by schemathesis: a type past what a routing key holds was a 503, for ever; now the
    longest one is accepted and one more character is a 400 naming the field."""
    key = await ingest.tenant()
    status, body, _ = await ingest.call("POST", "/v1/events", token=key, json={"event_type": "a" * 200, "payload": {}})
    assert status == 202, body
    status, body, _ = await ingest.call("POST", "/v1/events", token=key, json={"event_type": "a" * 201, "payload": {}})
    assert (status, body["error"]["field"]) == (400, "event_type")


def test_every_example_is_a_body_its_model_accepts():
    examples = [(op, op.example) for wing in wiring.WINGS for op in wing.operations if op.example is not None]
    assert len(examples) >= 5
    for op, example in examples:
        assert op.body is not None and op.body.model_validate(example), op.path
