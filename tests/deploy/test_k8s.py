"""The Kubernetes manifests agree with the code: entry points, ports, probes, deadlines,
body limits, image tags, queues, secrets, and the security and availability rules."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from unittest import mock

import pytest
from k8s_render import K8S, OVERLAYS, SERVICES, container, find, one, render, selects

from helpers import REPO
from hookyard_common.broker import topology
from hookyard_common.core.settings import Settings, environment_variables
from hookyard_common.runtime import runner
from hookyard_ingest.app import create_app
from hookyard_ingest.receiving.sources import BODY_LIMIT_FACTOR

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

# Secrets the operators write (named after their resources) and secrets the
# person deploying creates (deploy/k8s/README.md says how); nothing else may be referenced.
OPERATOR_SECRETS = {"hookyard-rabbitmq-default-user", "hookyard-mongodb-admin-hookyard"}
USER_SECRETS = {"hookyard-admin", "hookyard-mongodb-password"}


def configured(objects: list[dict]) -> Settings:
    """The settings a pod gets from the overlay's ConfigMap (everything else at its default)."""
    data = one(objects, "ConfigMap", "hookyard-config")["data"]
    names = set(environment_variables().values())
    assert set(data) <= names, f"unknown settings in the ConfigMap: {set(data) - names}"
    with mock.patch.dict(os.environ, {name: value for name, value in data.items() if value != ""}):
        return Settings()  # read as a pod reads them: from its environment


def ops_paths() -> set[str]:
    lifecycle = runner.Lifecycle("any", None, Settings())
    return {route.path for route in runner.ops_routes(lifecycle)}


def deployment(objects, service):
    return one(objects, "Deployment", f"hookyard-{service}")


def parse_size(value: str) -> int:
    """nginx's size syntax: bytes, or k/m/g (powers of 1024)."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_entry_point_on_its_port_with_the_runners_probes(overlay, service):
    objects = render(overlay)
    settings = configured(objects)
    pod = container(deployment(objects, service))
    assert pod["command"] == [f"hookyard-{service}"]
    assert f"hookyard-{service}" in PROJECT["scripts"]
    ports = {p["name"]: p["containerPort"] for p in pod["ports"]}
    assert ports == {"http": settings.service_port(service)}
    assert settings.http_host == "0.0.0.0"
    assert pod["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz", "/metrics"} <= ops_paths()
    assert pod["readinessProbe"]["timeoutSeconds"] > settings.readiness_timeout_seconds
    svc = one(objects, "Service", f"hookyard-{service}")
    assert svc["spec"]["ports"] == [{"name": "http", "port": settings.service_port(service), "targetPort": "http"}]
    assert selects(svc["spec"]["selector"], deployment(objects, service)["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_shutdown_fits_in_the_grace_period(overlay, service):
    objects = render(overlay)
    settings = configured(objects)
    spec = deployment(objects, service)["spec"]["template"]["spec"]
    pause = 0
    pre_stop = container(deployment(objects, service)).get("lifecycle", {}).get("preStop")
    if pre_stop:
        assert pre_stop["exec"]["command"][0] == "sleep"
        pause = float(pre_stop["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pause + settings.shutdown_deadline_seconds


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_pods_meet_the_restricted_pod_security_standard_and_have_resources(overlay, service):
    objects = render(overlay)
    d = deployment(objects, service)
    spec = d["spec"]["template"]["spec"]
    pod = container(d)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    ctx = pod["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(pod["resources"][kind])
    assert {m["mountPath"] for m in pod["volumeMounts"]} == {"/tmp"}  # the only writable place


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_replicas_spread_and_survive_disruptions(overlay, service):
    objects = render(overlay)
    d = deployment(objects, service)
    labels = d["spec"]["template"]["metadata"]["labels"]
    keys = set()
    for constraint in d["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"], labels)
        keys.add(constraint["topologyKey"])
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdbs = [p for p in find(objects, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1 and pdbs[0]["spec"]["maxUnavailable"] == 1


def test_production_replicas_and_autoscaling():
    objects = render("prod")
    hpa = one(objects, "HorizontalPodAutoscaler", "hookyard-ingest")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "hookyard-ingest"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    queues = {"dispatcher": topology.DISPATCH_QUEUE, "retrier": topology.RETRY_DUE_QUEUE}
    namespace = one(objects, "Namespace", "hookyard")["metadata"]["name"]
    for service, queue in queues.items():
        assert not find(objects, "HorizontalPodAutoscaler", f"hookyard-{service}"), "KEDA makes its own"
        scaled = one(objects, "ScaledObject", f"hookyard-{service}")
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"hookyard-{service}"
        rabbit = next(t for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq")
        if rabbit["metadata"].get("useRegex") == "true":  # summed over the queues it matches
            assert rabbit["metadata"]["operation"] == "sum" and rabbit["metadata"]["protocol"] == "http"
            matches = re.compile(rabbit["metadata"]["queueName"]).fullmatch
            assert matches(queue) and (service != "dispatcher" or matches(topology.lane_queue("ten_1")))
            assert not matches(topology.RETRY_DUE_QUEUE if service == "dispatcher" else topology.DISPATCH_QUEUE)
        else:
            assert rabbit["metadata"]["queueName"] == queue
        assert f"hookyard-rabbitmq.{namespace}.svc" in rabbit["metadata"]["host"]
        assert one(objects, "TriggerAuthentication", rabbit["authenticationRef"]["name"])
        assert scaled["spec"]["minReplicaCount"] >= 2
    # The heartbeat: two replicas, safe because flips are atomic conditional updates.
    assert deployment(objects, "heartbeat")["spec"]["replicas"] == 2
    assert not find(objects, "HorizontalPodAutoscaler", "hookyard-heartbeat")
    # The CPU autoscalers the prod overlay replaces still exist without KEDA (dev).
    for service in ("ingest", "dispatcher", "retrier"):
        assert one(render("dev"), "HorizontalPodAutoscaler", f"hookyard-{service}")


def test_images_are_the_release_in_prod_and_never_latest():
    version = PROJECT["version"]
    assert version == runner.VERSION
    for overlay, expected in (("prod", f"ghcr.io/hookyard/hookyard:{version}"), ("dev", "hookyard:dev")):
        for service in SERVICES:
            assert container(deployment(render(overlay), service))["image"] == expected
    for overlay in OVERLAYS:
        rabbit = one(render(overlay), "RabbitmqCluster", "hookyard-rabbitmq")
        assert not rabbit["spec"]["image"].endswith(":latest")


def test_the_ingress_publishes_the_api_not_the_probes_with_the_ingests_body_limit():
    objects = render("prod")
    settings = configured(objects)
    ingress = one(objects, "Ingress", "hookyard-ingest")
    limit = parse_size(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert limit == settings.max_body_bytes * BODY_LIMIT_FACTOR
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for p in paths:
        assert p["backend"]["service"] == {"name": "hookyard-ingest", "port": {"name": "http"}}
    published = [p["path"] for p in paths]
    routes = {r.resource.canonical for r in create_app(Settings()).router.routes()}
    for route in routes:
        exposed = any(route.startswith(prefix) for prefix in published)
        assert exposed == (route not in ops_paths()), route
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert settings.public_url == f"https://{ingress['spec']['rules'][0]['host']}"


def test_network_policies_isolate_the_services():
    objects = render("prod")
    policies = find(objects, "NetworkPolicy")
    pods = {s: deployment(objects, s)["spec"]["template"]["metadata"]["labels"] for s in SERVICES}

    def applying(labels, direction):
        return [
            p for p in policies if selects(p["spec"]["podSelector"], labels) and direction in p["spec"]["policyTypes"]
        ]

    for service, labels in pods.items():
        ingress_rules = [r for p in applying(labels, "Ingress") for r in p["spec"].get("ingress", [])]
        sources = {
            r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for r in ingress_rules
        }
        assert sources == ({"ingress-nginx", "monitoring"} if service == "ingest" else {"monitoring"}), service
        egress = [r for p in applying(labels, "Egress") for r in p["spec"].get("egress", [])]
        internet = [peer["ipBlock"] for r in egress for peer in r["to"] if "ipBlock" in peer]
        assert bool(internet) == (service in ("dispatcher", "retrier")), service
        for block in internet:  # private, loopback, link-local (metadata) and CGNAT stay closed
            closed = [ipaddress.ip_network(c) for c in block["except"]]
            net = ipaddress.ip_network(block["cidr"])
            probes = ["10.1.2.3", "172.20.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1"]
            probes = probes if net.version == 4 else ["::1", "fd00::1", "fe80::1"]
            for address in probes:
                assert any(ipaddress.ip_address(address) in c for c in closed), address
        ports = {p["port"] for r in egress if "ipBlock" not in r["to"][0] for p in r.get("ports", [])}
        assert ports == {53, 5672, 27017}, service
    deny = one(objects, "NetworkPolicy", "hookyard-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_connections_come_from_the_operators_secrets(overlay):
    objects = render(overlay)
    rabbit = one(objects, "RabbitmqCluster", "hookyard-rabbitmq")
    mongo = one(objects, "MongoDBCommunity", "hookyard-mongodb")
    user = mongo["spec"]["users"][0]
    assert {
        f"{rabbit['metadata']['name']}-default-user",
        f"{mongo['metadata']['name']}-{user['db']}-{user['name']}",
    } == OPERATOR_SECRETS
    assert {"name": "readWrite", "db": Settings().mongo_db} in user["roles"]
    for service in SERVICES:
        env = {e["name"]: e for e in container(deployment(objects, service))["env"]}
        assert env["AMQP_URL"]["value"].startswith(
            "amqp://$(RABBITMQ_USERNAME):$(RABBITMQ_PASSWORD)@hookyard-rabbitmq:5672/"
        )
        names = list(env)
        assert names.index("RABBITMQ_PASSWORD") < names.index("AMQP_URL")  # $(VAR) needs it defined first
        assert env["MONGO_URI"]["valueFrom"]["secretKeyRef"]["key"] == "connectionString.standard"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_committed(overlay):
    objects = render(overlay)
    referenced = set()
    for obj in objects:
        _collect_secret_names(obj, referenced)
    rendered = {s["metadata"]["name"] for s in find(objects, "Secret")}
    assert referenced - rendered <= OPERATOR_SECRETS | USER_SECRETS
    if overlay == "prod":
        assert not rendered
    for secret in find(objects, "Secret"):  # dev: generated placeholders, visibly not secrets
        for value in secret.get("data", {}).values():
            import base64

            assert base64.b64decode(value).decode().startswith("dev-only-")
    guide = (K8S / "README.md").read_text()
    for name in USER_SECRETS:
        assert name in guide


def _collect_secret_names(node, into: set) -> None:
    if isinstance(node, dict):
        for key in ("secretKeyRef", "secretRef", "passwordSecretRef"):
            if isinstance(node.get(key), dict):
                into.add(node[key]["name"])
        if "secretTargetRef" in node:
            into.update(ref["name"] for ref in node["secretTargetRef"])
        for value in node.values():
            _collect_secret_names(value, into)
    elif isinstance(node, list):
        for value in node:
            _collect_secret_names(value, into)


def test_broker_and_database_are_replicated_in_production():
    objects = render("prod")
    assert one(objects, "RabbitmqCluster", "hookyard-rabbitmq")["spec"]["replicas"] == 3
    mongo = one(objects, "MongoDBCommunity", "hookyard-mongodb")["spec"]
    assert mongo["members"] == 3 and mongo["type"] == "ReplicaSet"
    assert int(mongo["version"].split(".")[0]) >= 7
    # Every queue Hookyard declares is a quorum queue, so the three nodes replicate it.
    assert all(spec.arguments["x-queue-type"] == "quorum" for spec in topology.queue_specs(Settings().retry_tiers_ms))


def test_every_service_is_scraped_and_every_alert_rule_is_deployed():
    objects = render("prod")
    monitors = find(objects, "ServiceMonitor")
    for service in SERVICES:
        svc = one(objects, "Service", f"hookyard-{service}")
        matching = [m for m in monitors if selects(m["spec"]["selector"], svc["metadata"]["labels"])]
        assert len(matching) == 1, service
        assert matching[0]["spec"]["endpoints"][0]["port"] == "http"
        assert matching[0]["spec"]["endpoints"][0]["path"] in ops_paths()
    assert one(objects, "PrometheusRule", "hookyard")
