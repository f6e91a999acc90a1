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
from hookyard_ingest.app import WINGS, create_app
from hookyard_ingest.openapi.operation import Access
from hookyard_ingest.receiving.sources import BODY_LIMIT_FACTOR

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

# Secrets the operators write (named after their resources) and secrets the
# person deploying creates (deploy/k8s/README.md says how); nothing else may be referenced.
# The topology operator writes one per broker User (<user>-user-credentials).
BROKER_USERS = {f"hookyard-{s}" for s in SERVICES} | {"hookyard-keda"}
OPERATOR_SECRETS = {"hookyard-mongodb-admin-hookyard"} | {f"{user}-user-credentials" for user in BROKER_USERS}
# hookyard-ingest-tls: cert-manager writes it for the prod Ingress (or the person deploying does).
USER_SECRETS = {"hookyard-admin", "hookyard-mongodb-password", "hookyard-ingest-tls"}


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


def prefix_matches(prefix: str, path: str) -> bool:
    """An Ingress `Prefix` path: whole path elements (`/v1/events` matches `/v1/events/x`, not `/v1/eventsx`)."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


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
    assert all(p["pathType"] == "Prefix" for p in paths)
    admin = {wing.prefix + o.path for wing in WINGS if wing.access == Access.admin for o in wing.operations}
    assert {"/v1/tenants", "/v1/admin/parked"} <= admin
    routes = {r.resource.canonical for r in create_app(Settings()).router.routes()}
    for route in routes:
        exposed = any(prefix_matches(prefix, route) for prefix in published)
        assert exposed == (route not in ops_paths() and route not in admin), route
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert settings.public_url == f"https://{ingress['spec']['rules'][0]['host']}"


# IANA's special-purpose address registries (IPv4 and IPv6): every range not
# forwardable to, or not meant to be reached on, the public internet, plus NAT64
# and 6to4, which embed an IPv4 address (a private one would be reached through them).
NOT_PUBLIC = [
    *("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"),
    *("192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15"),
    *("198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"),
    *("::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32"),
    *("2001:db8::/32", "2002::/16", "3fff::/20", "fc00::/7", "fe80::/10", "ff00::/8"),
]


def assert_only_public(blocks: list[dict]) -> None:
    """The ipBlocks open no address of NOT_PUBLIC (the first, a middle and the last of each range)
    and still open the public internet."""
    allowed = [
        (ipaddress.ip_network(b["cidr"]), [ipaddress.ip_network(c) for c in b.get("except", [])]) for b in blocks
    ]

    def opened(address) -> bool:
        return any(address in net and not any(address in c for c in closed) for net, closed in allowed)

    for cidr in NOT_PUBLIC:
        net = ipaddress.ip_network(cidr)
        middle = net.network_address + net.num_addresses // 2
        for address in (net.network_address, middle, net.broadcast_address):
            assert not opened(address), f"{address} ({cidr}) is reachable"
    for public in ("1.1.1.1", "8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001::1"):
        assert opened(ipaddress.ip_address(public)), public


def test_the_egress_check_catches_an_open_range():
    blocks = [{"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "127.0.0.0/8"]}]
    with pytest.raises(AssertionError, match="is reachable"):
        assert_only_public(blocks)
    delivery = one(render("prod"), "NetworkPolicy", "hookyard-delivery-to-internet")
    v4, v6 = sorted((p["ipBlock"] for p in delivery["spec"]["egress"][0]["to"]), key=lambda b: ":" in b["cidr"])
    for dropped in ("64:ff9b::/96", "2002::/16"):  # without NAT64 or 6to4 closed, it would be refused
        block = {**v6, "except": [c for c in v6["except"] if c != dropped]}
        with pytest.raises(AssertionError, match=re.escape(dropped)):
            assert_only_public([v4, block])


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
        if internet:
            assert_only_public(internet)
        ports = {p["port"] for r in egress if "ipBlock" not in r["to"][0] for p in r.get("ports", [])}
        assert ports == {53, 5672, 27017}, service
    deny = one(objects, "NetworkPolicy", "hookyard-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_connections_come_from_the_operators_secrets(overlay):
    objects = render(overlay)
    mongo = one(objects, "MongoDBCommunity", "hookyard-mongodb")
    user = mongo["spec"]["users"][0]
    assert f"{mongo['metadata']['name']}-{user['db']}-{user['name']}" in OPERATOR_SECRETS
    assert {"name": "readWrite", "db": Settings().mongo_db} in user["roles"]
    for service in SERVICES:
        env = {e["name"]: e for e in container(deployment(objects, service))["env"]}
        for variable in ("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"):  # its own broker user, not the administrator
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == f"hookyard-{service}-user-credentials"
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


def ingress_peers(objects, labels: dict) -> dict[int, list[dict]]:
    """port -> the `from` peers the NetworkPolicies selecting a pod with `labels` let in."""
    allowed: dict[int, list[dict]] = {}
    for policy in find(objects, "NetworkPolicy"):
        if selects(policy["spec"]["podSelector"], labels) and "Ingress" in policy["spec"]["policyTypes"]:
            for rule in policy["spec"].get("ingress", []):
                for port in rule.get("ports", []):
                    allowed.setdefault(port["port"], []).extend(rule["from"])
    return allowed


def test_broker_and_database_pods_accept_only_hookyard_and_their_peers():
    objects = render("prod")
    hookyard = deployment(objects, "ingest")["spec"]["template"]["metadata"]["labels"]
    stranger = {"app.kubernetes.io/name": "someone-else"}
    for labels, port in (
        ({"app.kubernetes.io/name": "hookyard-rabbitmq"}, 5672),
        ({"app": "hookyard-mongodb-svc"}, 27017),
    ):
        allowed = ingress_peers(objects, labels)
        assert allowed, f"no NetworkPolicy selects {labels}: every pod may connect"
        pod_peers = [p["podSelector"] for p in allowed[port] if "namespaceSelector" not in p]
        assert any(selects(peer, hookyard) for peer in pod_peers)
        assert not any(selects(peer, stranger) for peer in pod_peers)
        assert all("namespaceSelector" not in p for p in allowed[port])  # no other namespace reaches the data
        assert any(selects(peer, labels) for peer in pod_peers), "the members reach each other"
    rabbit = ingress_peers(objects, {"app.kubernetes.io/name": "hookyard-rabbitmq"})

    def namespaces(port: int) -> set[str]:
        return {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in rabbit[port]
            if "namespaceSelector" in p
        }

    assert "keda" in namespaces(15672)  # KEDA reads queue depths through the management API
    assert namespaces(15692) == {"monitoring"}


def permissions(objects) -> dict[str, dict]:
    return {p["spec"]["userReference"]["name"]: p["spec"] for p in find(objects, "Permission")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_broker_user_limited_to_hookyards_names(overlay):
    objects = render(overlay)
    rabbit = one(objects, "RabbitmqCluster", "hookyard-rabbitmq")["metadata"]["name"]
    users = {u["metadata"]["name"]: u["spec"] for u in find(objects, "User")}
    assert set(users) == BROKER_USERS
    granted = permissions(objects)
    assert set(granted) == BROKER_USERS
    for name, spec in users.items():
        assert spec["rabbitmqClusterReference"]["name"] == rabbit
        assert spec.get("tags", []) == (["monitoring"] if name == "hookyard-keda" else [])  # never administrator
    for name, spec in granted.items():
        assert spec["vhost"] == "/" and spec["rabbitmqClusterReference"]["name"] == rabbit
        for kind, pattern in spec["permissions"].items():
            assert pattern.startswith("^"), (name, kind)
            matches = re.compile(pattern).match
            assert not matches("other.app.queue"), (name, kind)  # other applications' names stay closed
    assert granted["hookyard-keda"]["permissions"] == {"configure": "^$", "write": "^$", "read": "^$"}
    writes = {s: re.compile(granted[f"hookyard-{s}"]["permissions"]["write"]).match for s in SERVICES}
    assert not writes["heartbeat"]("amq.default")  # it publishes only onto hookyard.events
    # Every pod knows every service's broker user: their events may carry a source's fields.
    for service in SERVICES:
        env = {e["name"]: e for e in container(deployment(objects, service))["env"]}
        listed = env["HOOKYARD_BROKER_SERVICE_USERS"]["value"]
        for other in SERVICES:
            variable = f"RABBITMQ_USER_{other.upper()}"
            assert f'"$({variable})"' in listed
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == f"hookyard-{other}-user-credentials"
            assert list(env).index(variable) < list(env).index("HOOKYARD_BROKER_SERVICE_USERS")
    for keda in find(objects, "TriggerAuthentication"):  # prod: KEDA logs in as its monitoring user
        assert {ref["name"] for ref in keda["spec"]["secretTargetRef"]} == {"hookyard-keda-user-credentials"}


def test_the_dead_letter_queue_is_bounded_by_a_policy():
    policy = one(render("prod"), "Policy", "hookyard-dead-bounded")["spec"]
    assert re.fullmatch(policy["pattern"][1:].rstrip("$"), topology.DEAD_LETTER_QUEUE)
    for other in (topology.DISPATCH_QUEUE, topology.INVALID_QUEUE, topology.RETRY_DUE_QUEUE):
        assert not re.match(policy["pattern"], other)  # nothing that is the only copy may be dropped
    assert policy["applyTo"] == "queues" and policy["vhost"] == "/"
    definition = policy["definition"]
    assert definition["overflow"] == "drop-head"  # never refuse the publish: the worker would fail
    assert 0 < definition["max-length"] <= 1_000_000 and 0 < definition["max-length-bytes"] <= 2 * 1024**3
    rabbit = one(render("prod"), "RabbitmqCluster", "hookyard-rabbitmq")["spec"]
    disk = int(rabbit["persistence"]["storage"].removesuffix("Gi")) * 1024**3
    assert definition["max-length-bytes"] * 10 < disk  # far below what the disk alarm guards


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_have_no_replicas_an_apply_would_reset(overlay):
    objects = render(overlay)
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in find(objects, "HorizontalPodAutoscaler")}
    scaled |= {s["spec"]["scaleTargetRef"]["name"] for s in find(objects, "ScaledObject")}
    assert {"hookyard-ingest", "hookyard-dispatcher", "hookyard-retrier"} <= scaled
    for d in find(objects, "Deployment"):
        if d["metadata"]["name"] in scaled:
            assert "replicas" not in d["spec"], d["metadata"]["name"]
        else:
            assert d["spec"]["replicas"] >= 1


def test_broker_and_database_spread_over_zones_and_survive_drains():
    objects = render("prod")
    rabbit = one(objects, "RabbitmqCluster", "hookyard-rabbitmq")["spec"]
    mongo = one(objects, "MongoDBCommunity", "hookyard-mongodb")["spec"]
    pods = (
        ({"app.kubernetes.io/name": "hookyard-rabbitmq"}, rabbit["override"]["statefulSet"]["spec"]["template"]),
        ({"app": "hookyard-mongodb-svc"}, mongo["statefulSet"]["spec"]["template"]),
    )
    for labels, template in pods:
        spread = template["spec"]["topologySpreadConstraints"]
        zone = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zone and zone[0]["whenUnsatisfiable"] == "DoNotSchedule" and selects(zone[0]["labelSelector"], labels)
        budgets = [b for b in find(objects, "PodDisruptionBudget") if selects(b["spec"]["selector"], labels)]
        assert len(budgets) == 1 and budgets[0]["spec"]["maxUnavailable"] == 1, labels


def test_rabbitmq_is_sized_as_its_operator_recommends_for_production():
    """cluster-operator's docs/examples/production-ready: at least 2 full CPUs (4 in the example),
    requests equal to limits, memory for the broker's high watermark, an explicit disk free limit."""
    rabbit = one(render("prod"), "RabbitmqCluster", "hookyard-rabbitmq")["spec"]
    resources = rabbit["resources"]
    assert resources["requests"] == resources["limits"]
    assert float(resources["limits"]["cpu"]) >= 2
    assert int(resources["limits"]["memory"].removesuffix("Gi")) >= 4
    config = rabbit["rabbitmq"]["additionalConfig"]
    assert "cluster_partition_handling = pause_minority" in config
    assert re.search(r"^disk_free_limit\.relative = 1\.0$", config, re.MULTILINE)
    assert int(rabbit["image"].split(":")[1].split(".")[0]) >= 4  # RabbitMQ 4.x
    guide = (K8S / "README.md").read_text()
    assert "### RabbitMQ 3.13 and 4.x" in guide and "quorum" in guide


def test_mongodb_runs_on_mongodb_controllers_for_kubernetes_not_the_deprecated_operator():
    guide = (K8S / "README.md").read_text()
    needs = guide[guide.index("## What the cluster needs") : guide.index("### RabbitMQ 3.13 and 4.x")]
    table = [line for line in needs.splitlines() if line.startswith("| [")]
    assert any("github.com/mongodb/mongodb-kubernetes)" in line and "MongoDBCommunity" in line for line in table)
    assert not any("mongodb-kubernetes-operator" in line for line in table)  # deprecated: named only as replaced
    manifest = " ".join(line.lstrip("# ") for line in (K8S / "base" / "mongodb.yaml").read_text().splitlines())
    assert "through MongoDB Controllers for Kubernetes" in manifest
    vendored = (REPO / "tests" / "deploy" / "crds" / "README.md").read_text()
    assert "mongodb/mongodb-kubernetes" in vendored  # the CRD test_k8s_schemas validates against


def test_the_tls_certificate_comes_from_cert_manager_by_default():
    objects = render("prod")
    ingress = one(objects, "Ingress", "hookyard-ingest")
    issuer = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    secret = ingress["spec"]["tls"][0]["secretName"]
    assert secret in USER_SECRETS
    guide = (K8S / "README.md").read_text()
    rows = [line for line in guide.splitlines() if line.startswith(f"| `{secret}`")]
    assert rows and "cert-manager" in rows[0], "the secrets table lists the TLS secret"
    assert f"`{issuer}`" in guide  # the issuer setting is documented with its default


def test_prometheus_operator_objects_carry_the_label_kube_prometheus_stack_selects():
    objects = render("prod")
    found = find(objects, "ServiceMonitor") + find(objects, "PrometheusRule")
    assert len(found) >= 3
    releases = {o["metadata"].get("labels", {}).get("release") for o in found}
    assert len(releases) == 1 and None not in releases
    release = releases.pop()
    assert f"release: {release}" in (K8S / "README.md").read_text()
    component = (K8S / "components" / "monitoring").rglob("*.yaml")
    assert sum(f.read_text().count(f"release: {release}") for f in component) == 1  # set once
