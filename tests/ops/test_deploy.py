"""Deployment files: Kubernetes manifests against their schemas, autoscaling that covers
every queue, docker-compose's wiring, dashboards and alerts that parse."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import reads

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
WORKERS = ("planner", "content", "assessment", "prompts")
SERVICES = ("gateway", *WORKERS)


def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


checks = _load_script("check_manifests")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _errors(doc: dict[str, Any]) -> list[str]:
    report = checks.Report()
    checks.check_docs([doc], "test", report)
    return report.errors


def test_every_manifest_passes_the_checks() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_manifests.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resources validated (Kubernetes 1.31.0 schemas)" in proc.stdout
    assert "custom resources validated (CRD schemas)" in proc.stdout
    if shutil.which("kubectl") or shutil.which("kustomize"):
        assert "2 overlay(s) rendered" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("path", "mutate", "expected"),
    [
        # a typo in a core resource: strict schemas reject unknown fields
        ("base/content/deployment.yaml", lambda d: d["spec"].update(replica=2), "replica"),
        (
            "base/content/deployment.yaml",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=5),
            "5",
        ),
        (
            "base/gateway/hpa.yaml",
            lambda d: d["spec"].update(maxReplicas="ten"),
            "ten",
        ),
        # the operators' resources
        (
            "base/content/scaledobject.yaml",
            lambda d: d["spec"]["triggers"][0]["metadata"].update(queueNmae="x"),
            "queueNmae",
        ),
        (
            "base/content/scaledobject.yaml",
            lambda d: d["spec"]["triggers"][0]["metadata"].update(mode="Backlog"),
            "Backlog",
        ),
        ("base/postgres.yaml", lambda d: d["spec"].update(instances="3"), "instances"),
        ("base/rabbitmq.yaml", lambda d: d["spec"].update(replica=1), "replica"),
        # hardening
        (
            "base/content/deployment.yaml",
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
                allowPrivilegeEscalation=True
            ),
            "allowPrivilegeEscalation",
        ),
        (
            "base/content/deployment.yaml",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"),
            "readinessProbe",
        ),
    ],
)
def test_a_broken_manifest_is_caught(path: str, mutate: Any, expected: str) -> None:
    doc = _docs(K8S / path)[0]
    assert _errors(doc) == []  # the committed file is fine
    broken = copy.deepcopy(doc)
    mutate(broken)
    errors = _errors(broken)
    assert errors and any(expected in e for e in errors), errors


def test_every_worker_scales_on_every_queue_it_consumes() -> None:
    for service in WORKERS:
        runtime = importlib.import_module(f"services.{service}.app").runtime
        consumed = set(runtime.durable_queues)
        (scaled,) = _docs(K8S / "base" / service / "scaledobject.yaml")
        triggers = {t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]}
        assert triggers == consumed, f"{service}: KEDA watches {triggers}, consumes {consumed}"


def test_each_service_has_its_objects_and_readiness_needs_consumers() -> None:
    for service in SERVICES:
        folder = K8S / "base" / service
        kinds = {d["kind"] for f in folder.glob("*.yaml") for d in _docs(f) if "kind" in d}
        assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"} <= kinds
        assert ("HorizontalPodAutoscaler" if service == "gateway" else "ScaledObject") in kinds
        (deployment,) = _docs(folder / "deployment.yaml")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == service
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        # /readyz fails while consumers are detached (shared/asgi.py)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env_from = container.get("envFrom", [])
        assert any("configMapRef" in e for e in env_from), "settings come from the ConfigMap"
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert {"lectern-amqp", "lectern-db"} <= secrets
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert "migrate-job.yaml" in base["resources"]


def test_compose_runs_everything_in_order() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    needed = {"rabbitmq", "postgres", "migrate", "prometheus", "grafana", "jaeger", *SERVICES}
    assert needed <= set(compose)
    for name in ("rabbitmq", "postgres", *SERVICES):
        assert "healthcheck" in compose[name], f"{name} has no health check"
    for name in SERVICES:
        depends = compose[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert "ports" not in compose[name] or name == "gateway", "workers must scale"
    assert compose["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert compose["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert compose["rabbitmq"]["volumes"][0].startswith("./deploy/rabbitmq/enabled_plugins")
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {c["job_name"] for c in prometheus["scrape_configs"]}
    assert {*SERVICES, "rabbitmq"} <= jobs
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    mounts = compose["prometheus"]["volumes"]
    assert any(m.startswith("./deploy/prometheus/alerts.yml:") for m in mounts)


def test_dashboards_are_built_from_their_source() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    titles = {d.title for d in _load_script("build_dashboards").DASHBOARDS}
    assert titles == {
        "Lectern overview",
        "Lectern LLM tokens and cost",
        "Lectern queues and workers",
        "Lectern SLOs",
    }


def test_alert_rules_parse_and_are_documented() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            reads(rule["expr"])  # valid PromQL
            assert rule["labels"]["severity"] in ("info", "warning", "critical")
            assert rule["annotations"]["summary"]
            names.append(rule["alert"])
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for required in ("DeadLetters", "QueueWithoutConsumer", "LLMErrorRate", "BudgetNearlySpent"):
        assert any(required in n for n in names), required
    for name in names:
        assert f"`{name}`" in doc, f"docs/OPERATIONS.md does not explain {name}"
