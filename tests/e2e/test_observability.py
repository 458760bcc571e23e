"""Metrics as ops see them: every panel and alert reads metrics the services really serve.

The cluster does real work first (a course, a poison message, a refused request), then
every service's /metrics and RabbitMQ's Prometheus endpoint are scraped. Each
dashboard query and alert expression is parsed as PromQL; each metric it reads must
be served, and each label it matches or groups by must be on that metric's series
(or be one Prometheus adds: job, instance, service).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import bearer, guest_token, publish_command, ready_course
from tests.support.processes import Cluster
from tests.support.promql import reads

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_METRICS = "http://127.0.0.1:15692/metrics/per-object"
TARGET_LABELS = {"job", "instance", "service"}  # added by Prometheus' scrape config
SYNTHETIC = {"up"}  # made by Prometheus itself
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Scrape:
    """Sample names and label names per served metric, over several /metrics pages."""

    def __init__(self) -> None:
        self.labels: dict[str, set[str]] = {}  # sample name -> label names seen
        self.families: dict[str, str] = {}  # family name -> type
        self.samples: list[Any] = []

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for name in _declared_samples(family.name, family.type):
                self.labels.setdefault(name, set())
            for sample in family.samples:
                self.labels.setdefault(sample.name, set()).update(sample.labels)
                self.samples.append(sample)


def _declared_samples(name: str, kind: str) -> list[str]:
    """The sample names a family has even before it has a child (labelled, unused)."""
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_count", f"{name}_sum"]
    if kind == "summary":
        return [name, f"{name}_count", f"{name}_sum"]
    return [name]


def defined_labels() -> dict[str, set[str]]:
    """Label names of Lectern's own metrics, by sample name, from their definitions."""
    import shared.llm.metrics
    import shared.metrics

    out: dict[str, set[str]] = {}
    for module in (shared.metrics, shared.llm.metrics):
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                for family in metric.describe():
                    for name in _declared_samples(family.name, family.type):
                        out[name] = set(metric._labelnames)
    return out


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard target and every alert rule."""
    found = []
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found.append((f"alerts.yml: {rule['alert']}", rule["expr"]))
    return found


async def drive_traffic(cluster: Cluster, amqp_url: str) -> None:
    """Work that makes the labelled series appear: a course, a poison command, a 404."""
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        await ready_course(client, token)
        assert (await client.get("/v1/courses/nope", headers=bearer(token))).status_code == 404
    poison = {
        "message_id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
        "correlation_id": "ops-test",
        "schema": "planner.plan_course.v1",
        "payload": {"topic": ""},
    }
    await publish_command(amqp_url, poison)


async def scrape(cluster: Cluster) -> Scrape:
    out = Scrape()
    async with httpx.AsyncClient(timeout=10) as client:
        for name, service in cluster.services.items():
            resp = await client.get(f"{service.url}/metrics")
            assert resp.status_code == 200, f"{name}: {resp.text[:300]}"
            out.add(resp.text)
        try:
            resp = await client.get(RABBITMQ_METRICS)
        except httpx.ConnectError:
            pytest.fail(
                "RabbitMQ's Prometheus endpoint (:15692) is not up: "
                "rabbitmq-plugins enable rabbitmq_prometheus (scripts/ensure-infra.sh does it)"
            )
        out.add(resp.text)
    return out


async def test_every_panel_and_alert_reads_served_metrics(
    cluster: Cluster, infra: dict[str, str]
) -> None:
    await drive_traffic(cluster, infra["AMQP_URL"])
    served = await scrape(cluster)
    for _ in range(100):  # the poison message is dead-lettered asynchronously
        if "queue" in served.labels["lectern_dead_letters_total"]:
            break
        await asyncio.sleep(0.1)
        served = await scrape(cluster)
    defined = defined_labels()

    missing, unlabelled, checked = [], [], 0
    all_queries = queries()
    assert len(all_queries) >= 30
    for where, expr in all_queries:
        read = reads(expr)  # raises on invalid PromQL
        for metric in read.metrics - SYNTHETIC:
            checked += 1
            if metric not in served.labels:
                missing.append(f"{where}: {metric}")
        # every label the expression uses is on one of the metrics it reads
        # (a labelled metric not used yet has no series: its definition says its labels)
        have = set().union(*(served.labels.get(m) or defined.get(m, set()) for m in read.metrics))
        have |= TARGET_LABELS
        unlabelled += [f"{where}: label {label!r}" for label in sorted(read.labels - have)]
    assert not missing, "metrics that no service serves:\n" + "\n".join(missing)
    assert not unlabelled, "labels not on the metrics read:\n" + "\n".join(unlabelled)
    assert checked >= 40


async def test_metrics_are_documented_and_labels_bounded(
    cluster: Cluster, infra: dict[str, str]
) -> None:
    await drive_traffic(cluster, infra["AMQP_URL"])
    served = await scrape(cluster)
    ours = {name for name in served.families if name.startswith("lectern_")}
    assert len(ours) >= 20, ours
    doc = (ROOT / "docs/OPERATIONS.md").read_text()
    documented = set(re.findall(r"`(lectern_[a-z_]+)", doc))
    # the documentation names counters with their _total suffix, as queries do
    served_names = {f"{n}_total" if served.families[n] == "counter" else n for n in ours}
    assert served_names - documented == set(), "served but not in docs/OPERATIONS.md"
    assert documented - served_names == set(), "documented but not served"
    for sample in served.samples:
        if not sample.name.startswith("lectern_"):
            continue
        for label, value in sample.labels.items():
            assert not UUID.search(value), f"{sample.name}: id {value!r} as label {label}"
