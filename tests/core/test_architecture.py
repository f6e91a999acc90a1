"""The folders are the design: every import goes to a room docs/architecture.md allows.

The table of allowed imports is read from the doc itself, so the doc and the
code cannot drift apart: a module importing a room above it, or a service
importing another service, fails here with the line that does it.
"""

from __future__ import annotations

import ast
import re

from helpers import REPO

COMMON = REPO / "libs/common/hookyard_common"
INGEST = REPO / "services/ingest/hookyard_ingest"
CONTRACTS = {"schemas", "header_rules", "operational_events", "listen_wire"}
PACKAGES = {
    "hookyard_common": COMMON,
    "hookyard_ingest": INGEST,
    "hookyard_dispatcher": REPO / "services/dispatcher/hookyard_dispatcher",
    "hookyard_retrier": REPO / "services/retrier/hookyard_retrier",
    "hookyard_heartbeat": REPO / "services/heartbeat/hookyard_heartbeat",
    "hookyard_cli": REPO / "cli/hookyard_cli",
}
SERVICE_ROOMS = {
    "hookyard_dispatcher": "dispatcher",
    "hookyard_retrier": "retrier",
    "hookyard_heartbeat": "heartbeat",
    "hookyard_cli": "cli",
}


def room_of(module: str) -> str | None:
    """The room a dotted module name lives in; None for the package roots themselves."""
    top, *rest = module.split(".")
    if top == "hookyard_common":
        if not rest:
            return None
        return "common.contracts" if rest[0] in CONTRACTS else f"common.{rest[0]}"
    if top == "hookyard_ingest":
        if not rest:
            return None
        return f"ingest.{rest[0]}" if (INGEST / rest[0]).is_dir() else "ingest.app"
    return SERVICE_ROOMS.get(top)


def allowed() -> dict[str, set[str]]:
    """The doc's table: room -> the rooms it may import (itself always)."""
    doc = (REPO / "docs/architecture.md").read_text()
    table = doc.split("## What each room may import", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w.]+)` \| (.+?) \|$", table, flags=re.M)
    common = {name for name, _ in rows if name.startswith("common.")}  # "common": every room of the library
    rooms: dict[str, set[str]] = {}
    for name, may in rows:
        rooms[name] = {name}
        for entry in (e.strip() for e in may.split(",")):
            if entry == "common":
                rooms[name] |= common
            elif entry != "—":
                rooms[name].add(entry if "." in entry else f"common.{entry}")
    return rooms


def imports() -> list[tuple[str, int, str, str]]:
    """(file, line, importing room, imported room) for every import between Hookyard's rooms."""
    found = []
    for top, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            module = ".".join([top, *path.relative_to(root).with_suffix("").parts]).removesuffix(".__init__")
            source = room_of(module)
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                names = [f"{node.module}.{a.name}" for a in node.names] if "." not in node.module else [node.module]
                for name in names:
                    target = room_of(name) if name.split(".")[0] in PACKAGES else None
                    if source and target and target != source:
                        found.append((str(path.relative_to(REPO)), node.lineno, source, target))
    return found


def test_the_doc_names_every_room_the_code_has():
    rooms = allowed()
    seen = {room for _, _, source, target in imports() for room in (source, target)}
    assert seen <= set(rooms), f"rooms missing from docs/architecture.md: {sorted(seen - set(rooms))}"


def test_every_import_goes_where_the_doc_allows():
    rooms = allowed()
    wrong = [
        f"{path}:{line}: {source} imports {target}"
        for path, line, source, target in imports()
        if target not in rooms.get(source, set())
    ]
    assert not wrong, "imports the folder map does not allow:\n" + "\n".join(wrong)


def test_the_rule_can_fail():
    # The check sees an upward import: the store may not use the delivery engine.
    assert "common.delivery" not in allowed()["common.store"]
    assert room_of("hookyard_common.delivery.worker") == "common.delivery"
    assert room_of("hookyard_ingest.app") == "ingest.app" and room_of("hookyard_ingest.edge.auth") == "ingest.edge"
    assert room_of("hookyard_common.schemas") == "common.contracts"
