"""Alerting rules, scrape config, Grafana dashboard and docs/metrics.md agree with the code.

promtool (Debian's prometheus package, fetched by tests/tools.py) checks the
rules and the scrape config and runs the rules' unit tests; promql-parser
parses every alert and dashboard expression so that each metric it names can
be checked against the metrics the services register.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from helpers import REPO
from tools import promtool

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "hookyard.json"
PACKAGES = ("hookyard_common", "hookyard_ingest", "hookyard_dispatcher", "hookyard_retrier", "hookyard_heartbeat")

# Metrics the rules or the dashboard may use before a service registers them
# (name -> (type, labels)); once the code registers one, its entry goes.
PENDING: dict[str, tuple[str, str]] = {}
# RabbitMQ's, from its rabbitmq_prometheus plugin (per-queue figures on): the pipeline alerts
# and the dashboard's RabbitMQ row. test_the_brokers_metrics_are_the_ones_named_here scrapes a real broker.
RABBITMQ = {
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers",
    "rabbitmq_alarms_memory_used_watermark",
    "rabbitmq_alarms_free_disk_space_watermark",
    "rabbitmq_disk_space_available_bytes",
    "rabbitmq_disk_space_available_limit_bytes",
    "rabbitmq_process_resident_memory_bytes",
    "rabbitmq_resident_memory_limit_bytes",
    "rabbitmq_global_messages_dead_lettered_delivery_limit_total",
}
# Not Hookyard's: Prometheus' own `up` and `scrape_samples_scraped`, RabbitMQ's, and the process
# collector of prometheus_client.
EXTERNAL = {"up", "scrape_samples_scraped"} | RABBITMQ


def hookyard_metrics() -> dict[str, MetricWrapperBase]:
    """Every hookyard_* metric the services' modules register, by the name they are exposed under."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    found = {}
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase) and collector._name.startswith("hookyard_"):
            suffix = "_total" if collector._type == "counter" else ""
            found[collector._name + suffix] = collector
    return found


def exposed_series_names() -> set[str]:
    """Every sample name a scrape of a Hookyard service can contain."""
    names = set(EXTERNAL)
    for metric in hookyard_metrics().values():
        base = metric._name
        names |= {
            "counter": {base + "_total"},
            "gauge": {base},
            "histogram": {base + "_bucket", base + "_sum", base + "_count"},
            "summary": {base + "_sum", base + "_count", base},
        }[metric._type]
    for family in REGISTRY.collect():  # process_*, python_* collectors
        names |= {sample.name for sample in family.samples}
    names.update(PENDING)
    return names


def selected_metrics(expression: str) -> set[str]:
    """The metric names an expression selects."""
    found: set[str] = set()

    def walk(node) -> None:
        if type(node).__name__ == "VectorSelector":
            assert node.name, f"a selector without a metric name in {expression!r}"
            found.add(node.name)
        for attribute in ("lhs", "rhs", "expr", "args", "vector_selector", "param"):
            child = getattr(node, attribute, None)
            if isinstance(child, (list, tuple)):
                for item in child:
                    walk(item)
            elif child is not None:
                walk(child)

    walk(promql_parser.parse(expression))
    return found


def alert_rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def grafana_to_promql(expression: str) -> str:
    return expression.replace("$__rate_interval", "5m")


def run(*args: str) -> str:
    result = subprocess.run([str(promtool()), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_accepts_the_rules_and_the_scrape_config():
    assert "SUCCESS" in run("check", "rules", "alerts.yml")
    assert "SUCCESS" in run("check", "config", "prometheus.yml")


def test_each_alert_fires_when_it_should_and_only_then():
    output = run("test", "rules", "alerts.test.yml")
    assert "SUCCESS" in output
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "alerts.test.yml").read_text()))
    assert tested == {rule["alert"] for rule in alert_rules()}


def test_the_issues_alerts_are_all_there():
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {
        "HookyardDeadLettersGrowing",
        "HookyardDeliverySuccessRateLow",
        "HookyardRetryBacklogOld",
        "HookyardHeartbeatScannerNotRunning",
        "HookyardIngest5xx",
        "HookyardBrokerUnreachable",
    } <= alerts
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_and_dashboard_name_only_metrics_the_services_expose():
    known = exposed_series_names()
    expressions = [(rule["alert"], rule["expr"]) for rule in alert_rules()]
    expressions += [(title, grafana_to_promql(e)) for title, e in dashboard_expressions()]
    for where, expression in expressions:
        unknown = selected_metrics(expression) - known
        assert not unknown, f"{where}: {unknown} are not metrics any Hookyard service exposes"


def test_a_misspelt_metric_would_be_caught():
    assert selected_metrics('sum(rate(hookyard_delivery_total{outcome="success"}[5m])) > 0') - exposed_series_names()
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(hookyard_deliveries_total[5m]) > ")


def test_the_prometheusrule_is_the_rules_file():
    import importlib.util

    spec = importlib.util.spec_from_file_location("prometheusrule", PROMETHEUS / "prometheusrule.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.TARGET.read_text() == generator.render(), "run deploy/prometheus/prometheusrule.py"
    resource = yaml.safe_load(generator.TARGET.read_text())
    assert resource["spec"]["groups"] == yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]


def test_scrape_jobs_cover_every_service_with_the_kubernetes_job_names():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    from hookyard_common.core.settings import Settings

    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for service in ("ingest", "dispatcher", "retrier", "heartbeat"):
        assert jobs[f"hookyard-{service}"] == [f"{service}:{Settings().service_port(service)}"]
    assert config["rule_files"] == ["alerts.yml"]


def test_the_dashboard_covers_what_operators_watch():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for _, expression in dashboard_expressions():
        used |= selected_metrics(grafana_to_promql(expression))
    for needed in (
        "hookyard_ingest_http_responses_total",  # ingest rate
        "hookyard_ingest_accept_seconds_bucket",  # ingest latency
        "hookyard_deliveries_total",  # deliveries by outcome
        "hookyard_tasks_handed_on_total",  # retry tiers, dead letters
        "hookyard_retry_lateness_seconds_bucket",
        "hookyard_monitors",  # monitors by state
    ):
        assert needed in used
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert dashboard["templating"]["list"][0]["query"] == "prometheus"


# Cardinality (docs/metrics.md): labels whose values grow with tenants, sources or endpoints.
ID_LABELS = {"tenant", "tenant_id", "source", "source_id", "endpoint", "endpoint_id", "monitor", "event_id"}


def test_no_default_metric_has_a_label_holding_an_id():
    for name, metric in hookyard_metrics().items():
        held = ID_LABELS & set(metric._labelnames)
        if name.startswith("hookyard_tenant_"):  # the opt-in, capped family
            assert held == {"tenant"}, name
        else:
            assert not held, f"{name} has a label holding an id: {held}"


def test_rules_and_dashboard_group_only_by_bounded_labels():
    expressions = [(rule["alert"], rule["expr"]) for rule in alert_rules()] + dashboard_expressions()
    for where, expression in expressions:
        grouped = set(re.findall(r"by \(([^)]*)\)", expression))
        labels = {label.strip() for group in grouped for label in group.split(",")}
        if all(name.startswith("hookyard_tenant_") for name in selected_metrics(grafana_to_promql(expression))):
            labels -= {"tenant"}
        assert not labels & ID_LABELS, f"{where}: {expression}"


# docs/metrics.md


def documented() -> dict[str, tuple[str, str]]:
    """name -> (type, labels) from the tables of docs/metrics.md."""
    doc = (REPO / "docs" / "metrics.md").read_text()
    rows = re.findall(r"^\| `(hookyard_[a-z_]+)` \| (\w+) \|([^|]*)\|", doc, flags=re.MULTILINE)
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "a metric is documented twice"
    return {name: (kind, labels.strip()) for name, kind, labels in rows}


def test_every_metric_is_documented_once_with_its_type_and_labels():
    docs = documented()
    code = hookyard_metrics()
    assert set(docs) == set(code) | set(PENDING)
    expected = {name: (kind, tuple(filter(None, labels.split(",")))) for name, (kind, labels) in PENDING.items()}
    expected |= {name: (metric._type, tuple(metric._labelnames)) for name, metric in code.items()}
    for name, (kind, labels) in expected.items():
        assert docs[name] == (kind, ", ".join(f"`{label}`" for label in labels)), name


# The pipeline on the broker (issue 19).

PIPELINE = ("hookyard.dispatch", "hookyard.dispatch.tenant.ten_1", "hookyard.retry.due")


def test_the_pipeline_alerts_watch_every_pipeline_queue():
    from hookyard_common.broker import topology

    assert (topology.DISPATCH_QUEUE, topology.lane_queue("ten_1"), topology.RETRY_DUE_QUEUE) == PIPELINE
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name in ("HookyardQueueBacklogGrowing", "HookyardQueueOldestMessageOld", "HookyardQueueWithoutConsumer"):
        queues = re.findall(r'queue=~"([^"]+)"', rules[name]["expr"])
        assert queues, name
        for queue in PIPELINE:  # each pipeline queue is matched by some selector of the rule
            assert any(re.fullmatch(pattern.replace("\\\\", "\\"), queue) for pattern in queues), (name, queue)
        assert not any(re.fullmatch(p.replace("\\\\", "\\"), "hookyard.dead") for p in queues), name
    # A retry tier nobody pumps never gives its retries back (broker/tier_pump.py).
    tier = topology.tier_queue(1_000)
    queues = re.findall(r'queue=~"([^"]+)"', rules["HookyardQueueWithoutConsumer"]["expr"])
    assert any(re.fullmatch(pattern.replace("\\\\", "\\"), tier) for pattern in queues), tier
    for name in ("HookyardBrokerAlarm", "HookyardBrokerDiskLow", "HookyardBrokerMemoryHigh"):
        assert rules[name]["labels"]["severity"] in ("warning", "critical")
    # Warned before the alarm: the disk and memory warnings fire at a margin the alarm has not reached.
    assert "< 2" in rules["HookyardBrokerDiskLow"]["expr"] and "> 0.8" in rules["HookyardBrokerMemoryHigh"]["expr"]
    assert "delivery_limit" in rules["HookyardMessagesParkedByBroker"]["expr"]


def test_the_dead_letter_alert_matches_the_policys_bound():
    import yaml as _yaml

    policy = next(
        doc
        for doc in _yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "rabbitmq-access.yaml").read_text())
        if doc["kind"] == "Policy"
    )
    rule = next(rule for rule in alert_rules() if rule["alert"] == "HookyardDeadLetterQueueUnbounded")
    bound = int(re.search(r"> (\d+)", rule["expr"]).group(1))
    assert bound == policy["spec"]["definition"]["max-length"]


def test_the_dashboard_has_a_rabbitmq_row():
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    rabbit = next(r for r in rows if r["title"] == "RabbitMQ")
    below = [p for p in dashboard["panels"] if p["gridPos"]["y"] > rabbit["gridPos"]["y"] and p["type"] != "row"]
    used = set()
    for panel in below:
        for target in panel.get("targets", []):
            used |= selected_metrics(grafana_to_promql(target["expr"]))
    assert {
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_consumers",
        "rabbitmq_alarms_memory_used_watermark",
    } <= used


def test_the_brokers_metrics_are_the_ones_named_here(infra):
    """Scrape the test broker's rabbitmq_prometheus: every RabbitMQ metric the rules and dashboard use exists."""
    import urllib.request

    if infra.local_rabbit is None:
        pytest.skip("the test broker is not a local node of ours (its Prometheus port is unknown)")
    names: set[str] = set()
    for path in ("/metrics", "/metrics/per-object"):
        url = f"http://127.0.0.1:{infra.local_rabbit.ports.prometheus}{path}"
        text = urllib.request.urlopen(url, timeout=30).read().decode()
        names |= {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("rabbitmq_")}
    assert names >= RABBITMQ, RABBITMQ - names
    used = set()
    for rule in alert_rules():
        used |= selected_metrics(rule["expr"])
    for _, expression in dashboard_expressions():
        used |= selected_metrics(grafana_to_promql(expression))
    assert {name for name in used if name.startswith("rabbitmq_")} <= names
