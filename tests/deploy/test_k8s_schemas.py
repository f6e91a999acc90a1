"""Every object the overlays render validates offline, each kind against the best schema we have.

- Kubernetes' own kinds: the OpenAPI schemas `kubernetes-validate` ships, in
  strict mode (unknown fields are errors), for the oldest and the newest
  Kubernetes versions we support.
- ServiceMonitor, PrometheusRule (prometheus-operator), ScaledObject,
  TriggerAuthentication (KEDA): the cloudcoil models generated from those
  projects' CRDs; an object must load (types, enums, required fields) and
  dump back unchanged (so a misspelt field, which the models would drop, fails).
- RabbitmqCluster and MongoDBCommunity: no package ships their CRDs, so a
  hand-written subset of each CRD's schema below: apiVersion, kind, the
  required fields and every field these manifests use, closed to others.
"""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pydantic
import pytest
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

_QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$"}
_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": _QUANTITY},
        "limits": {"type": "object", "additionalProperties": _QUANTITY},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
}
_ANY_OBJECT = {"type": "object"}  # a core Kubernetes type (affinity, pod template): validated below


def _resource(api_version: str, kind: str, spec: dict) -> dict:
    """The schema of a custom resource: its apiVersion and kind, metadata, and `spec`, closed."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": {"type": "object", "additionalProperties": False, **spec},
        },
    }


# rabbitmq.com/v1beta1 RabbitmqCluster (RabbitMQ cluster operator), the fields used here.
RABBITMQ_CLUSTER = _resource(
    "rabbitmq.com/v1beta1",
    "RabbitmqCluster",
    {
        "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "image": {"type": "string", "pattern": r"^[^:]+:[^:]+$"},
            "resources": _RESOURCES,
            "persistence": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"storage": _QUANTITY, "storageClassName": {"type": "string"}},
            },
            "rabbitmq": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "additionalConfig": {"type": "string", "maxLength": 2000},
                    "additionalPlugins": {"type": "array", "items": {"type": "string"}},
                },
            },
            "affinity": _ANY_OBJECT,
        }
    },
)

_USER = {
    "type": "object",
    "required": ["name", "db", "passwordSecretRef", "roles", "scramCredentialsSecretName"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "db": {"type": "string"},
        "passwordSecretRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
        },
        "roles": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "db"],
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "db": {"type": "string"}},
            },
        },
        "scramCredentialsSecretName": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "connectionStringSecretName": {"type": "string"},
    },
}

# mongodbcommunity.mongodb.com/v1 MongoDBCommunity (MongoDB community operator):
# its CRD requires spec.security, spec.type and spec.version, and of each user
# name, db, passwordSecretRef, roles and scramCredentialsSecretName.
MONGODB_COMMUNITY = _resource(
    "mongodbcommunity.mongodb.com/v1",
    "MongoDBCommunity",
    {
        "required": ["security", "type", "version"],
        "properties": {
            "members": {"type": "integer", "minimum": 1},
            "type": {"enum": ["ReplicaSet"]},
            "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
            "security": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "authentication": {
                        "type": "object",
                        "required": ["modes"],
                        "additionalProperties": False,
                        "properties": {
                            "modes": {
                                "type": "array",
                                "items": {"enum": ["SCRAM", "SCRAM-SHA-1", "SCRAM-SHA-256", "X509"]},
                            }
                        },
                    }
                },
            },
            "users": {"type": "array", "items": _USER},
            "additionalMongodConfig": {"type": "object"},
            "statefulSet": {
                "type": "object",
                "required": ["spec"],
                "additionalProperties": False,
                "properties": {"spec": _ANY_OBJECT},
            },
        },
    },
)

HAND_WRITTEN = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): RABBITMQ_CLUSTER,
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"): MONGODB_COMMUNITY,
}


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
    elif key in HAND_WRITTEN:
        jsonschema.validate(obj, HAND_WRITTEN[key])
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
        ("MongoDBCommunity", "hookyard-mongodb", lambda o: o["spec"]["users"][0].pop("scramCredentialsSecretName")),
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
