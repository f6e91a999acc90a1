"""Write alerts.yml as the Kubernetes PrometheusRule of deploy/k8s/components/monitoring.

    .venv/bin/python deploy/prometheus/prometheusrule.py

alerts.yml is the one source of the rules; tests/deploy/test_prometheus.py fails when
the PrometheusRule was not regenerated after a change.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "alerts.yml"
TARGET = HERE.parent / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"

HEADER = """\
# Generated from deploy/prometheus/alerts.yml by deploy/prometheus/prometheusrule.py.
# Edit alerts.yml and run that script; tests/deploy/test_prometheus.py checks they agree.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render() -> str:
    rules = yaml.safe_load(RULES.read_text())
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hookyard"},
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
