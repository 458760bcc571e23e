#!/usr/bin/env python3
"""Write Lectern's Grafana dashboards (deploy/grafana/dashboards/*.json) from one source.

The panels are declared here, as PromQL and a few words each, and rendered to the
JSON Grafana provisions. ``tests/ops/test_dashboards.py`` checks that the committed
JSON is what this script writes and that every metric a panel queries is served.

Usage: python scripts/build_dashboards.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


@dataclass
class Panel:
    title: str
    description: str
    targets: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    stack: bool = False
    width: int = 12
    thresholds: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    height = 5 if panel.kind == "stat" else 8
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}]
            + [{"color": color, "value": value} for value, color in panel.thresholds],
        }
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
        options: dict[str, Any] = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {"datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend}
            for ref, (expr, legend) in zip("ABCDEFGH", panel.targets, strict=False)
        ],
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of ``dashboard`` (panels laid out left to right)."""
    panels, x, y, row_height = [], 0, 0, 0
    for pid, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, pid, x, y))
        row_height = max(row_height, panels[-1]["gridPos"]["h"])
        x += panel.width
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["lectern"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"title": "Lectern", "type": "dashboards", "tags": ["lectern"], "asDropdown": True}
        ],
        "panels": panels,
    }


def http_error_ratio(window: str) -> str:
    """Share of gateway requests answered with a 5xx over ``window``."""
    return (
        f'(sum(rate(lectern_http_requests_total{{status=~"5.."}}[{window}]))'
        f" / sum(rate(lectern_http_requests_total[{window}])))"
    )


JOBS_FAILED = 'sum(rate(lectern_jobs_total{outcome="failed"}[1h]))'
JOBS_ENDED = 'sum(rate(lectern_jobs_total{outcome=~"completed|failed"}[1h]))'

OVERVIEW = Dashboard(
    "lectern-overview",
    "Lectern overview",
    "Requests, jobs, errors and latency across the Lectern services.",
    [
        Panel(
            "HTTP requests/s by route",
            "Gateway requests per second by route template and status.",
            [
                (
                    "sum by (route, status) (rate(lectern_http_requests_total[5m]))",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "HTTP p95 latency by route",
            "95th percentile time to the response's headers (an SSE stream: until it opens).",
            [
                (
                    "histogram_quantile(0.95, sum by (le, route) "
                    "(rate(lectern_http_request_duration_seconds_bucket[5m])))",
                    "{{route}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Jobs by kind and outcome",
            "Jobs started, completed and failed per minute (plan_course, finalize, "
            "revise_lesson, generate_exercise, external ...).",
            [
                (
                    "sum by (kind, outcome) (rate(lectern_jobs_total[5m])) * 60",
                    "{{kind}} {{outcome}}",
                )
            ],
            unit="short",
        ),
        Panel(
            "Errors",
            "5xx answers, failed jobs, dead-lettered messages and failed LLM attempts per second.",
            [
                ('sum(rate(lectern_http_requests_total{status=~"5.."}[5m]))', "HTTP 5xx"),
                ('sum(rate(lectern_jobs_total{outcome="failed"}[5m]))', "jobs failed"),
                ("sum(rate(lectern_dead_letters_total[5m]))", "dead letters"),
                ("sum by (kind) (rate(lectern_llm_errors_total[5m]))", "LLM {{kind}}"),
            ],
            unit="short",
        ),
        Panel(
            "Job duration p95 by kind",
            "From a job's start to its final event.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, kind) "
                    "(rate(lectern_job_duration_seconds_bucket[15m])))",
                    "{{kind}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Open SSE streams and lessons in flight",
            "Streams the gateways hold open; lessons the content workers are writing.",
            [
                ("sum(lectern_sse_open_streams)", "SSE streams"),
                ("sum(lectern_lessons_in_flight)", "lessons in flight"),
                ("sum(lectern_llm_requests_in_flight)", "LLM calls in flight"),
            ],
        ),
    ],
)

LLM = Dashboard(
    "lectern-llm",
    "Lectern LLM tokens and cost",
    "Tokens, cost, latency and errors of LLM calls by model, service, task and prompt "
    "version; token budget use.",
    [
        Panel(
            "Tokens/s by service and direction",
            "Input (prompt) and output (completion) tokens per second.",
            [
                (
                    "sum by (service, direction) (rate(lectern_llm_tokens_total[5m]))",
                    "{{service}} {{direction}}",
                )
            ],
            stack=True,
        ),
        Panel(
            "Tokens/s by model",
            "Which models the tokens go to (fallbacks included).",
            [("sum by (model) (rate(lectern_llm_tokens_total[5m]))", "{{model}}")],
            stack=True,
        ),
        Panel(
            "Tokens/s by task and prompt version",
            "Compare prompt versions of a task (A/B tests, new versions).",
            [
                (
                    "sum by (task, prompt_version) (rate(lectern_llm_tokens_total[5m]))",
                    "{{task}} v{{prompt_version}}",
                )
            ],
        ),
        Panel(
            "Cost (USD/hour) by model",
            "Spend of models with a known price.",
            [("sum by (model) (rate(lectern_llm_cost_usd_total[1h])) * 3600", "{{model}}")],
            unit="currencyUSD",
            stack=True,
        ),
        Panel(
            "Request duration p95 and time to first token p95",
            "Whole calls (retries included) and the answering attempt's first text.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, task) "
                    "(rate(lectern_llm_request_duration_seconds_bucket[5m])))",
                    "{{task}} call",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, task) "
                    "(rate(lectern_llm_time_to_first_token_seconds_bucket[5m])))",
                    "{{task}} first token",
                ),
            ],
            unit="s",
        ),
        Panel(
            "Errors, retries and fallbacks",
            "Failed attempts by kind (rate_limit, timeout, provider_error, invalid_output), "
            "retries and switches to a fallback model, per second.",
            [
                ("sum by (kind) (rate(lectern_llm_errors_total[5m]))", "error {{kind}}"),
                ("sum(rate(lectern_llm_retries_total[5m]))", "retries"),
                ("sum(rate(lectern_llm_fallbacks_total[5m]))", "fallbacks"),
            ],
        ),
        Panel(
            "Token budget use (accounts this month)",
            "Accounts (tenants, users, guests) with usage this month by share of their "
            "budget used.",
            [("max by (band) (lectern_budget_accounts)", "{{band}}")],
            stack=True,
        ),
        Panel(
            "Tokens charged to budgets, and refusals",
            "Tokens charged per second by budget kind; requests refused for a spent budget.",
            [
                (
                    "sum by (budget) (rate(lectern_budget_tokens_charged_total[5m]))",
                    "charged {{budget}}",
                ),
                (
                    "sum by (budget) (rate(lectern_budget_rejections_total[5m]))",
                    "refused {{budget}}",
                ),
            ],
        ),
    ],
)

QUEUES = Dashboard(
    "lectern-queues",
    "Lectern queues and workers",
    "Queue depth and consumers (RabbitMQ's Prometheus plugin), processing rate and "
    "duration (FastStream), retries and dead letters.",
    [
        Panel(
            "Queue depth (ready messages)",
            "Messages waiting per queue; KEDA scales the workers on this.",
            [
                (
                    'sum by (queue) (rabbitmq_queue_messages_ready{queue!~".*\\\\.(dlq|retry)"})',
                    "{{queue}}",
                )
            ],
        ),
        Panel(
            "Consumers per queue",
            "Consumers attached to each durable queue; 0 means nobody works on it.",
            [
                (
                    'sum by (queue) (rabbitmq_queue_consumers{queue!~".*\\\\.(dlq|retry)"})',
                    "{{queue}}",
                )
            ],
        ),
        Panel(
            "Processed messages/s by handler",
            "Messages handled per second by service, handler and status.",
            [
                (
                    "sum by (service, handler, status) "
                    "(rate(faststream_received_processed_messages_total[5m]))",
                    "{{service}} {{handler}} {{status}}",
                )
            ],
        ),
        Panel(
            "Handler duration p95",
            "95th percentile time to process a message, by service and handler.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, service, handler) "
                    "(rate(faststream_received_processed_messages_duration_seconds_bucket[5m])))",
                    "{{service}} {{handler}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Messages in process",
            "Messages being handled right now, per service.",
            [
                (
                    "sum by (service) (faststream_received_messages_in_process)",
                    "{{service}}",
                )
            ],
        ),
        Panel(
            "Dead letters and retries",
            "Messages dead-lettered (permanent: can never succeed; exhausted: every "
            "attempt failed) and deliveries retried after a back-off, per minute.",
            [
                (
                    "sum by (queue, cause) (rate(lectern_dead_letters_total[5m])) * 60",
                    "dead {{queue}} {{cause}}",
                ),
                (
                    "sum by (queue) (rate(lectern_message_retries_total[5m])) * 60",
                    "retry {{queue}}",
                ),
            ],
        ),
        Panel(
            "Dead-letter queue depth",
            "Messages kept in each dead-letter queue for inspection.",
            [
                (
                    'sum by (queue) (rabbitmq_queue_messages{queue=~".*\\\\.dlq"})',
                    "{{queue}}",
                )
            ],
        ),
        Panel(
            "Published messages/s",
            "Messages the services publish per second, by destination and status.",
            [
                (
                    "sum by (service, destination, status) "
                    "(rate(faststream_published_messages_total[5m]))",
                    "{{service}} {{destination}} {{status}}",
                )
            ],
        ),
    ],
)

SLO = Dashboard(
    "lectern-slo",
    "Lectern SLOs",
    "Service level objectives: availability 99.5 %, API p95 under 500 ms, job success "
    "99 %, first streamed text of a plan p95 under 2 s, an 8-module course under 10 min.",
    [
        Panel(
            "Availability (non-5xx share, 1 h)",
            "Objective 99.5 % of gateway requests answered without a 5xx.",
            [(f"1 - {http_error_ratio('1h')}", "availability")],
            unit="percentunit",
            kind="stat",
            width=6,
        ),
        Panel(
            "API p95 latency (non-streaming)",
            "Objective under 0.5 s for every route but the SSE stream.",
            [
                (
                    "histogram_quantile(0.95, sum by (le) (rate("
                    'lectern_http_request_duration_seconds_bucket{route!~".*/events"}[1h])))',
                    "p95",
                )
            ],
            unit="s",
            kind="stat",
            width=6,
            thresholds=[(0.5, "red")],
        ),
        Panel(
            "Job success (1 h)",
            "Objective 99 % of jobs ending in their result rather than job.failed.",
            [(f"1 - ({JOBS_FAILED} / {JOBS_ENDED})", "success")],
            unit="percentunit",
            kind="stat",
            width=6,
        ),
        Panel(
            "Course duration p95",
            "From course creation to course.ready. Objective under 10 minutes.",
            [
                (
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(lectern_course_duration_seconds_bucket[1h])))",
                    "p95",
                )
            ],
            unit="s",
            kind="stat",
            width=6,
            thresholds=[(600, "red")],
        ),
        Panel(
            "Error budget burn (availability, 1 h vs 99.5 %)",
            "How fast the month's error budget burns: 1 = exactly on budget, above 14.4 "
            "pages (the budget would be gone in two days).",
            [(f"{http_error_ratio('1h')} / 0.005", "burn rate")],
        ),
        Panel(
            "Plan time to first token p95",
            "How long a learner waits for the plan's first words. Objective under 2 s.",
            [
                (
                    "histogram_quantile(0.95, sum by (le) (rate("
                    'lectern_llm_time_to_first_token_seconds_bucket{task="welcome_plan"}[1h])))',
                    "p95",
                )
            ],
            unit="s",
        ),
    ],
)

DASHBOARDS = [OVERVIEW, LLM, QUEUES, SLO]


def files() -> dict[Path, str]:
    """Each dashboard's file and its JSON text."""
    return {
        OUT / f"{d.uid}.json": json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
        for d in DASHBOARDS
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("out of date (run scripts/build_dashboards.py):", *stale, sep="\n  ")
        return 1
    print(f"{len(DASHBOARDS)} dashboards, {'checked' if args.check else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
