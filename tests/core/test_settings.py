"""Settings come from environment variables, and docs/configuration.md lists each one."""

import re

import pytest
from pydantic import ValidationError

from helpers import REPO
from hookyard_common.core.settings import Settings, environment_variables


def env_names() -> set[str]:
    return set(environment_variables().values())


def test_defaults_need_no_environment(monkeypatch):
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.ingest_port == 8000
    assert settings.amqp_url.startswith("amqp://")
    assert settings.retry_tiers_ms[0] == 1_000


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@broker:5672/prod")
    monkeypatch.setenv("HOOKYARD_RETRY_TIERS_MS", "[10, 50]")
    monkeypatch.setenv("HOOKYARD_SHUTDOWN_DEADLINE_SECONDS", "7.5")
    settings = Settings()
    assert settings.amqp_url == "amqp://u:p@broker:5672/prod"
    assert settings.retry_tiers_ms == (10, 50)
    assert settings.shutdown_deadline_seconds == 7.5


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("HOOKYARD_PREFETCH", "0")
    with pytest.raises(ValidationError, match="HOOKYARD_PREFETCH"):
        Settings()


def test_every_setting_is_documented_once():
    doc = (REPO / "docs" / "configuration.md").read_text()
    documented = re.findall(r"^\| `([A-Z_]+)` \|", doc, flags=re.MULTILINE)
    # OpenTelemetry's own variables, which the SDK reads (core/tracing.py): documented, not settings.
    assert {"OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"} <= set(documented)
    assert "`OTEL_EXPORTER_OTLP_ENDPOINT`" in doc
    documented = [name for name in documented if not name.startswith("OTEL_")]
    assert sorted(documented) == sorted(env_names())
    assert len(documented) == len(set(documented))


def test_a_field_reads_its_prefixed_variable_and_only_that(monkeypatch):
    variables = environment_variables()
    assert variables["prefetch"] == "HOOKYARD_PREFETCH"
    assert {name: v for name, v in variables.items() if not v.startswith("HOOKYARD_")} == {
        "amqp_url": "AMQP_URL",
        "mongo_uri": "MONGO_URI",
        "root_path": "ROOT_PATH",
    }
    # Names are case-sensitive: another spelling of a variable is not read.
    for name in ("HOOKYARD_PREFETCH", "AMQP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("hookyard_prefetch", "3")
    monkeypatch.setenv("HOOKYARD_AMQP_URL", "amqp://elsewhere/")
    settings = Settings()
    assert settings.prefetch == 64
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
