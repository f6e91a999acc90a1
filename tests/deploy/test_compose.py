"""docker-compose.yml agrees with the code: entry points, ports, probes, dependencies.

No Docker engine runs here, so this checks the file offline: its content, and its
validity against the Compose specification's JSON schema.
"""

import re
import tomllib

import yaml

from helpers import REPO
from hookyard_common.core.settings import Settings

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")


def load():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_runs_its_entry_point_with_a_readiness_healthcheck():
    compose = load()["services"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    defaults = Settings()
    for name in SERVICES:
        service = compose[name]
        assert service["command"] == [f"hookyard-{name}"] and f"hookyard-{name}" in scripts
        port = defaults.service_port(name)
        assert f"127.0.0.1:{port}:{port}" in service["ports"]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["HOOKYARD_HTTP_HOST"] == "0.0.0.0"
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        grace = int(re.match(r"(\d+)s", service["stop_grace_period"]).group(1))
        assert grace > defaults.shutdown_deadline_seconds


def test_dependencies_have_health_checks_plugins_and_a_replica_set():
    compose = load()["services"]
    assert compose["mongo"]["image"] == "mongo:7"
    assert "--replSet" in compose["mongo"]["command"]
    assert "rs.initiate" in " ".join(compose["mongo"]["healthcheck"]["test"])
    plugins_mount = compose["rabbitmq"]["volumes"][0].split(":")[0]
    plugins = (REPO / plugins_mount).read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    assert compose["rabbitmq"]["healthcheck"]["test"]


def compose_schema_errors(document: dict) -> list[str]:
    """Errors of `document` against the Compose specification's JSON schema (the copy
    check-jsonschema ships), via its command line, offline."""
    import json
    import subprocess
    import tempfile

    from helpers import BIN

    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(document, handle)
        handle.flush()
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", handle.name],
            capture_output=True,
            text=True,
            timeout=60,
        )
    return [] if result.returncode == 0 else [result.stdout + result.stderr]


def test_the_file_validates_against_the_compose_specification():
    assert compose_schema_errors(load()) == []


def test_the_schema_check_catches_mistakes():
    broken = load()
    broken["services"]["ingest"]["helthcheck"] = broken["services"]["ingest"].pop("healthcheck")
    assert compose_schema_errors(broken)
    broken = load()
    broken["services"]["mongo"]["ports"] = "27017"
    assert compose_schema_errors(broken)


def test_prometheus_and_grafana_run_under_the_monitoring_profile():
    compose = load()["services"]
    for name in ("prometheus", "grafana"):
        assert compose[name]["profiles"] == ["monitoring"]  # `docker compose up` alone leaves them out
    mounts = {m.split(":")[1]: REPO / m.split(":")[0] for m in compose["prometheus"]["volumes"] if m.startswith("./")}
    config = mounts["/etc/prometheus"] / "prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in compose["prometheus"]["command"]
    scraped = {
        t for job in yaml.safe_load(config.read_text())["scrape_configs"] for t in job["static_configs"][0]["targets"]
    }
    defaults = Settings()
    assert {f"{name}:{defaults.service_port(name)}" for name in SERVICES} <= scraped
    assert (mounts["/etc/prometheus"] / "alerts.yml").exists()
    grafana = {m.split(":")[1]: REPO / m.split(":")[0] for m in compose["grafana"]["volumes"] if m.startswith("./")}
    provider = yaml.safe_load((grafana["/etc/grafana/provisioning"] / "dashboards" / "hookyard.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (grafana["/var/lib/grafana/dashboards"] / "hookyard.json").exists()
    datasource = yaml.safe_load((grafana["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_ingest_gets_an_admin_token_from_the_documented_env_file():
    """`docker compose up` reads .env by itself; without the token it refuses to start, saying where to put it."""
    compose = load()["services"]
    value = compose["ingest"]["environment"]["HOOKYARD_ADMIN_TOKEN"]
    match = re.fullmatch(r"\$\{HOOKYARD_ADMIN_TOKEN:\?([^}]+)\}", value)
    assert match and ".env" in match.group(1), value  # required, never a committed default
    guide = (REPO / "docs" / "operations.md").read_text()
    assert 'echo "HOOKYARD_ADMIN_TOKEN=$(openssl rand -hex 32)" >> .env' in guide
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert compose["ingest"]["environment"]["AMQP_URL"] == compose["dispatcher"]["environment"]["AMQP_URL"]


def test_the_broker_bounds_hookyard_dead_as_on_kubernetes_and_reports_per_queue_figures():
    import json
    import shlex

    compose = load()["services"]["rabbitmq"]
    command = compose["healthcheck"]["test"][1].replace("$$", "$")
    words = shlex.split(command.split("&&")[1])
    assert words[:2] == ["rabbitmqctl", "-q"] and words[2] == "set_policy"
    policy = next(
        doc
        for doc in yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "rabbitmq-access.yaml").read_text())
        if doc["kind"] == "Policy"
    )["spec"]
    name, pattern, definition = words[-3:]
    assert (name, pattern, json.loads(definition)) == (policy["name"], policy["pattern"], policy["definition"])
    assert words[words.index("--apply-to") + 1] == policy["applyTo"]
    assert int(words[words.index("--priority") + 1]) == policy["priority"]
    mounts = {m.split(":")[1]: REPO / m.split(":")[0] for m in compose["volumes"] if m.startswith("./")}
    conf = next(path for target, path in mounts.items() if target.startswith("/etc/rabbitmq/conf.d/"))
    assert "prometheus.return_per_object_metrics = true" in conf.read_text()
