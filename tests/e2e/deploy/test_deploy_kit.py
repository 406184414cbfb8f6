"""The operations kit in deploy/: alert rules checked and unit-tested with Debian's
``promtool``, the Grafana dashboard's queries parsed by it too, every metric either names
checked against a real node's /metrics, and the Kubernetes manifests validated against the
Kubernetes API schemas (kubernetes-validate)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.conftest import need_service
from tests.support.paths import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "parley-dashboard.json"
KUBERNETES = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests promise to run on (preStop `sleep` needs 1.30).
KUBERNETES_VERSION = "1.30.0"
PROMQL_FUNCTIONS_AND_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "min", "max", "and", "or",
    "vector", "predict_linear", "le", "bool", "on", "without", "ignoring", "group_left",
}
# Series Prometheus itself provides, not Parley.
PROMETHEUS_SERIES = {"up"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        need_service(
            "promtool", "Install Debian's prometheus package (.ci/run does).", FileNotFoundError()
        )
    assert path is not None
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_are_valid() -> None:
    checked = run_promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alert_rules_fire_when_they_should() -> None:
    tested = run_promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    tested = {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }
    untested = alerts - tested - {"ParleyBusPublishFailures", "ParleySlowBusPublish",
                                  "ParleyOutboxBacklog", "ParleyDiskFillingUp"}
    assert not untested, f"alerts without a promtool unit test: {sorted(untested)}"


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each panel's query, with Grafana's variables filled in, as a recording rule: promtool
    parses it as Prometheus would."""
    rules = []
    for index, expression in enumerate(dashboard_expressions()):
        concrete = expression.replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": f"parley:dashboard_panel_{index}", "expr": concrete})
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run_promtool("check", "rules", str(rule_file), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def metric_names(expression: str) -> set[str]:
    """Series names in a PromQL expression: identifiers not followed by ``(`` that are not
    keywords, label names (inside braces or by/on lists) or durations."""
    without_variables = re.sub(r"\$\w+", "", expression)  # Grafana's $__rate_interval
    without_strings = re.sub(r'"[^"]*"', '""', without_variables)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_labels)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", without_groupings))
    return {
        name
        for name in names - PROMQL_FUNCTIONS_AND_WORDS
        if not re.fullmatch(r"\d+[smhdwy]", name) and not name.startswith("$")
    }


# The series a metric family of each type is scraped as (a labelled family with no
# children yet shows only its # TYPE line).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
}


def exposed_series(metrics_text: str) -> set[str]:
    series: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            family = family.removesuffix("_total") if kind == "counter" else family
            series.update(family + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            series.add(line.split("{")[0].split(" ")[0])
    return series


async def test_alerts_and_dashboard_name_only_metrics_parley_exposes(
    client: httpx.AsyncClient,
) -> None:
    # One request and one message so that labelled series exist.
    await client.get("/healthz")
    scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    exposed = exposed_series(scraped.text) | PROMETHEUS_SERIES
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    expressions += dashboard_expressions()
    used = set().union(*(metric_names(expression) for expression in expressions))
    unknown = used - exposed
    assert used, "no metric names found: the extraction is broken"
    assert not unknown, f"alerts or dashboard use metrics Parley does not expose: {unknown}"


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


@pytest.mark.parametrize(
    ("name", "document"),
    [pytest.param(n, d, id=f"{n}:{d['kind']}") for n, d in kubernetes_documents()],
)
def test_kubernetes_manifests_match_the_api_schemas(name: str, document: dict[str, Any]) -> None:
    if document["kind"] == "Kustomization":
        listed = set(document["resources"])
        present = {p.name for p in KUBERNETES.glob("*.yaml")}
        assert listed <= present, f"kustomization lists missing files: {listed - present}"
        assert present - listed == {"kustomization.yaml", "secret.example.yaml"}
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_catches_mistakes() -> None:
    """A misspelt field and a wrong type are refused: the check above can fail."""
    deployment = dict(kubernetes_documents())["deployment.yaml"]
    misspelt = json.loads(json.dumps(deployment))
    misspelt["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


def test_the_deployment_drains_before_it_is_killed() -> None:
    documents = dict(kubernetes_documents())
    pod = documents["deployment.yaml"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # preStop, then SIGTERM → 1001 to every socket (bounded by GO_AWAY_TIMEOUT_SECONDS).
    assert pod["terminationGracePeriodSeconds"] > pre_stop + 10
    service = documents["service.yaml"]["spec"]
    assert "sessionAffinity" not in service
    ingress = documents["ingress.yaml"]["metadata"]["annotations"]
    assert int(ingress["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60


def test_metric_name_extraction() -> None:
    names = metric_names(
        'histogram_quantile(0.99, sum by (instance, le) (rate(a_b_bucket{x="y"}[5m]))) > 0.1'
        " and up == 0"
    )
    assert names == {"a_b_bucket", "up"}
