"""The VM deployment (deploy/vm) agrees with the code, and systemd and nginx accept it.

`systemd-analyze verify` checks the units (with /opt/hookyard pointed at this
checkout, so the executables exist); `nginx -t` (Debian's nginx, unpacked by
tests/tools.py) checks the site with a throwaway certificate.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tomllib
from unittest import mock

import pytest

from helpers import REPO
from hookyard_common.core.settings import Settings
from hookyard_ingest.receiving.sources import BODY_LIMIT_FACTOR
from tools import nginx, nginx_config, openssl, systemd_analyze

VM = REPO / "deploy" / "vm"
SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")
HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def unit(service: str) -> dict[str, list[str]]:
    """key -> values of a unit file (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    for line in (VM / f"hookyard-{service}.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in (VM / "hookyard.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    return dict(pairs)


def example_settings() -> Settings:
    with mock.patch.dict(os.environ, env_example()):
        return Settings()


@pytest.mark.parametrize("service", SERVICES)
def test_units_run_the_services_hardened_with_time_to_shut_down(service):
    values = unit(service)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    command = values["ExecStart"][0].split()
    if service == "ingest":
        assert command[0] == "/opt/hookyard/.venv/bin/gunicorn"
        assert command[1:] == ["-c", "/opt/hookyard/services/ingest/gunicorn.conf.py"]
        assert (REPO / "services" / "ingest" / "gunicorn.conf.py").exists()
    else:
        assert command == [f"/opt/hookyard/.venv/bin/hookyard-{service}"] and f"hookyard-{service}" in scripts
    deadline = example_settings().shutdown_deadline_seconds
    graceful = math.ceil(deadline) + 5  # gunicorn.conf.py's graceful_timeout
    assert int(values["TimeoutStopSec"][0]) > (graceful if service == "ingest" else deadline)
    assert values["KillSignal"] == ["SIGTERM"]
    assert values["EnvironmentFile"] == ["/etc/hookyard/hookyard.env"]
    for key, expected in HARDENING.items():
        assert values[key] == [expected], key


def test_systemd_accepts_the_units(tmp_path):
    analyze = systemd_analyze()
    environment = tmp_path / "hookyard.env"
    environment.write_text((VM / "hookyard.env.example").read_text())
    for service in SERVICES:
        text = (VM / f"hookyard-{service}.service").read_text()
        text = text.replace("/opt/hookyard", str(REPO)).replace("/etc/hookyard/hookyard.env", str(environment))
        (tmp_path / f"hookyard-{service}.service").write_text(text)
    result = subprocess.run(
        [str(analyze), "verify", *(str(tmp_path / f"hookyard-{s}.service") for s in SERVICES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in result.stderr.splitlines() if "hookyard-" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_the_environment_example_is_valid_and_gunicorn_binds_where_nginx_forwards():
    settings = example_settings()
    site = (VM / "hookyard-nginx.conf").read_text()
    upstream = re.search(r"upstream hookyard_ingest \{\s*server ([\d.]+):(\d+);", site)
    assert env_example()["GUNICORN_BIND"] == f"{upstream.group(1)}:{upstream.group(2)}"
    assert int(upstream.group(2)) == settings.ingest_port
    assert settings.trusted_proxies == (f"{upstream.group(1)}/32",)  # nginx's X-Forwarded-* are believed


def test_the_nginx_site_forwards_client_details_and_the_ingests_body_limit():
    site = (VM / "hookyard-nginx.conf").read_text()
    size = re.search(r"client_max_body_size (\d+)m;", site)
    assert int(size.group(1)) * 1024**2 == example_settings().max_body_bytes * BODY_LIMIT_FACTOR
    for header, value in (
        ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Forwarded-Host", "$host"),
        ("Host", "$host"),
    ):
        assert f"proxy_set_header {header} {value};" in site
    published = re.search(r"location ~ \^/\(([a-z0-9|]+)\)/", site).group(1).split("|")
    from hookyard_common.runtime import runner
    from hookyard_ingest.app import create_app

    ops = {r.path for r in runner.ops_routes(runner.Lifecycle("any", None, Settings()))}
    for route in {r.resource.canonical for r in create_app(Settings()).router.routes()}:
        exposed = route.split("/")[1] in published
        assert exposed == (route not in ops), route


def test_nginx_accepts_the_site(tmp_path):
    binary = nginx()
    subprocess.run(
        [
            str(openssl()),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.example.com",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    site = (VM / "hookyard-nginx.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/hooks.example.com/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/hooks.example.com/privkey.pem", str(tmp_path / "key.pem"))
    config = nginx_config(tmp_path, site)
    result = subprocess.run(
        [str(binary), "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "syntax is ok" in result.stderr, result.stderr
