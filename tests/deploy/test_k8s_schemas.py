"""Every object the overlays render validates offline, each kind against the best schema we have.

- Kubernetes' own kinds: the OpenAPI schemas `kubernetes-validate` ships, in
  strict mode (unknown fields are errors), for the oldest and the newest
  Kubernetes versions we support.
- ServiceMonitor, PrometheusRule (prometheus-operator), ScaledObject,
  TriggerAuthentication (KEDA): the cloudcoil models generated from those
  projects' CRDs; an object must load (types, enums, required fields) and
  dump back unchanged (so a misspelt field, which the models would drop, fails).
- RabbitmqCluster (RabbitMQ Cluster Operator), User, Permission, Policy
  (Messaging Topology Operator) and MongoDBCommunity (MongoDB Controllers for
  Kubernetes): no package ships their CRDs, so the CRDs themselves are vendored
  in tests/deploy/crds/ (README there: source, version) and each object is
  validated against its version's openAPIV3Schema, closed to unknown fields as
  the API server's strict field validation is; the core types the MongoDB
  operator leaves open (its StatefulSet overrides) are validated as Kubernetes'.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator
from k8s_render import K8S, OVERLAYS, find, kustomize, one, render

KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

BUILTIN_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}

CRD_MODELS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator.PrometheusRule,
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): keda.TriggerAuthentication,
}

CRDS = Path(__file__).parent / "crds"


def _closed(schema: dict) -> dict:
    """The schema as the API server's strict field validation applies it (kubectl's default since
    1.27): an object with declared properties takes no others, unless it preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        open_ = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in schema and not open_:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(item) for item in schema]
    return schema


def _crd_schemas() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> a validator of the closed openAPIV3Schema of every served version of the vendored CRDs."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                api_version = f"{crd['spec']['group']}/{version['name']}"
                schema = _closed(version["schema"]["openAPIV3Schema"])
                schema["properties"]["apiVersion"] = {"const": api_version}
                schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
                schema["properties"]["metadata"] = _METADATA
                schema.setdefault("required", [])
                schema["required"] = sorted({*schema["required"], "apiVersion", "kind", "metadata", "spec"})
                found[(api_version, crd["spec"]["names"]["kind"])] = jsonschema.Draft7Validator(schema)
    return found


_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}},
}

#: The operators' CRDs, vendored unchanged in tests/deploy/crds/ (see its README for sources and versions).
VENDORED = _crd_schemas()


#: How `validate` refuses: a schema's error, a CRD model's, or fields the model dropped.
REFUSALS = (jsonschema.ValidationError, pydantic.ValidationError, AssertionError)


def validate(obj: dict) -> None:
    """Raise if `obj` does not validate against the schema for its kind (see the module doc)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if obj.get("apiVersion") in BUILTIN_GROUPS:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    elif key in CRD_MODELS:
        loaded = CRD_MODELS[key].model_validate(obj)
        dumped = loaded.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert dumped == obj, f"{key[1]} {obj['metadata']['name']}: fields the CRD does not know were dropped"
    elif key in VENDORED:
        VENDORED[key].validate(obj)
        _validate_embedded_core_types(obj)
    else:
        raise AssertionError(f"no schema for {key}: add one before adding the object")


def _validate_embedded_core_types(obj: dict) -> None:
    """The Kubernetes types inside the operators' resources, through a Pod/StatefulSet wrapper."""
    spec = obj["spec"]
    if "affinity" in spec:  # RabbitmqCluster.spec.affinity is a core/v1 Affinity
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "x"},
            "spec": {"affinity": spec["affinity"], "containers": [{"name": "x", "image": "x"}]},
        }
        validate(pod)
    if "statefulSet" in spec:  # a partial apps/v1 StatefulSetSpec the operator merges into its own
        statefulset_spec = copy.deepcopy(spec["statefulSet"]["spec"])
        statefulset_spec.setdefault("selector", {"matchLabels": {"app": "x"}})
        statefulset_spec.setdefault("serviceName", "x")
        template = statefulset_spec.setdefault("template", {})
        template.setdefault("metadata", {"labels": {"app": "x"}})
        for c in template.get("spec", {}).get("containers", []):
            c.setdefault("image", "x")
        statefulset = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "x"},
            "spec": statefulset_spec,
        }
        validate(statefulset)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay):
    objects = render(overlay)
    assert len(objects) > 20
    for obj in objects:
        validate(obj)


def test_the_base_renders_and_validates_on_its_own():
    for obj in kustomize(K8S / "base"):
        validate(obj)


# The validators catch mistakes (so the test above can fail).


@pytest.mark.parametrize(
    "kind, name, mutate",
    [
        ("Deployment", "hookyard-ingest", lambda o: o["spec"]["template"]["spec"].update(terminationGracePeriod=40)),
        ("Deployment", "hookyard-ingest", lambda o: o["spec"].update(replicas="three")),
        ("Ingress", "hookyard-ingest", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("backend")),
        ("ServiceMonitor", "hookyard", lambda o: o["spec"]["endpoints"][0].update(intervall="30s")),
        ("PrometheusRule", "hookyard", lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr")),
        ("ScaledObject", "hookyard-dispatcher", lambda o: o["spec"].update(minReplicaCount="two")),
        ("RabbitmqCluster", "hookyard-rabbitmq", lambda o: o["spec"].update(replica=3)),
        ("RabbitmqCluster", "hookyard-rabbitmq", lambda o: o["spec"]["persistence"].update(storageClass="ssd")),
        (
            "RabbitmqCluster",
            "hookyard-rabbitmq",
            lambda o: o["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"].update(topologySpread=[]),
        ),
        ("User", "hookyard-keda", lambda o: o["spec"].update(tags=["read-only"])),
        ("Permission", "hookyard-ingest", lambda o: o["spec"].pop("vhost")),
        ("Policy", "hookyard-dead-bounded", lambda o: o["spec"].update(applyTo="queue")),
        ("MongoDBCommunity", "hookyard-mongodb", lambda o: o["spec"]["users"][0].pop("roles")),
        ("MongoDBCommunity", "hookyard-mongodb", lambda o: o["spec"]["users"][0].update(password="x")),
        (
            "MongoDBCommunity",
            "hookyard-mongodb",
            lambda o: o["spec"]["statefulSet"]["spec"]["template"]["spec"].update(containerz=[]),
        ),
    ],
)
def test_a_broken_object_is_refused(kind, name, mutate):
    obj = one(render("prod"), kind, name)
    validate(obj)
    mutate(obj)
    with pytest.raises(REFUSALS):
        validate(obj)


def test_an_unknown_kind_is_refused():
    with pytest.raises(AssertionError, match="no schema"):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_each_overlay_has_its_own_namespace():
    for overlay in OVERLAYS:
        objects = render(overlay)
        namespaces = find(objects, "Namespace")
        assert len(namespaces) == 1
        name = namespaces[0]["metadata"]["name"]
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == name, (overlay, obj["kind"], obj["metadata"]["name"])
