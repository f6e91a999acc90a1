"""docker-compose.yml agrees with the code: entry points, ports, probes, dependencies.

No Docker engine runs here, so this checks the file's content offline.
"""

import re
import tomllib

import yaml
from hookyard_common.settings import Settings

from helpers import REPO

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
