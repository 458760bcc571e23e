"""Benchmark: an 8-module autopilot course with the offline model at 1 s per call.

Starts every service as a real process on its own database and virtual host,
creates courses through the gateway and follows their SSE streams to
``course.ready``. Prints, per run: wall time (POST to course.ready), the critical
path (plan + finalise + the slowest lesson + the slowest assessment call, each
call's own latency as the services measured it) and their ratio. A lesson's quiz
and its exercise are written side by side, so one assessment is one call plus the
sandbox verifying the exercise, which counts as Lectern's own cost. Target: ratio
<= 1.1, i.e. lessons and assessments are written in parallel and the plumbing
(broker, database, sandbox) adds little.

Where the time beyond the critical path goes, as medians over the runs: the gaps
between the steps (each call's start and end read from its ``llm.call_completed``:
when it was reported, less its latency), and the CPU each process used per course
(the five services, the sandbox's fork server with its runners, RabbitMQ,
PostgreSQL and this client), against the two cores' capacity over the wall time.

``--timeline`` adds, for the median run, each module's steps (its calls' starts and
ends, ``lesson.written``, ``assessment.ready``) after the last lesson call ended: where
modules wait for each other. ``--profile DIR`` runs every service under cProfile.

    make bench            # or: .venv/bin/python bench/course.py --runs 3 --latency-ms 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.client import create_course, guest_token  # noqa: E402
from tests.support.infra import fresh_bench_env  # noqa: E402
from tests.support.processes import Cluster, make_cluster  # noqa: E402
from tests.support.procfs import (  # noqa: E402
    children,
    command_line,
    cpu_between,
    cpu_reading,
    cpu_seconds,
)
from tests.support.sse import read_events  # noqa: E402

GAPS = (
    ("POST -> plan call", "post", "plan_start"),
    ("plan -> finalise call", "plan_end", "finalise_start"),
    ("finalised -> last lesson call", "finalise_end", "last_lesson_start"),
    ("last lesson -> last assessment call", "last_lesson_end", "last_assessment_start"),
    ("last call -> course.ready", "last_call_end", "ready"),
)


def _when(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def step_times(events: list[Any], posted: float) -> dict[str, float]:
    """When each step began and ended (wall clock), from the calls' own reports."""
    calls: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e.event == "llm.call_completed":
            p = e.data["payload"]
            end = _when(e.data["occurred_at"])
            calls.setdefault(p["task"], []).append((end - p["latency_ms"] / 1000, end))
    lessons = calls["write_lesson"]
    assessments = calls.get("quiz", []) + calls.get("coding_exercise", [])
    every = [c for cs in calls.values() for c in cs]
    return {
        "post": posted,
        "plan_start": calls["welcome_plan"][0][0],
        "plan_end": calls["welcome_plan"][0][1],
        "finalise_start": calls["finalise_modules"][0][0],
        "finalise_end": calls["finalise_modules"][0][1],
        "last_lesson_start": max(s for s, _ in lessons),
        "last_lesson_end": max(e for _, e in lessons),
        "last_assessment_start": max(s for s, _ in assessments),
        "last_call_end": max(e for _, e in every),
        "ready": events[-1].received,
    }


class CpuMeter:
    """CPU seconds of the cluster's processes, RabbitMQ, PostgreSQL and this client."""

    def __init__(self, cluster: Cluster) -> None:
        self.services = {n: s.proc.pid for n, s in cluster.services.items() if s.proc}
        assessment = self.services["assessment"]
        self.fork_server = next(
            (c for c in children(assessment) if "sandbox_runner" in command_line(c)), None
        )

    def read(self) -> dict[str, dict[int, float]]:
        """Per label, the CPU seconds of each of its processes."""
        used = cpu_reading(self.services)
        if self.fork_server is not None:
            pid = self.fork_server
            used["sandbox"] = {pid: cpu_seconds(pid, reaped_children=True)}
        me = os.times()
        used["bench client"] = {0: me.user + me.system}
        return used

    @staticmethod
    def used_ms(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
        """Milliseconds per label between two readings."""
        return {label: 1000 * sec for label, sec in cpu_between(before, after).items()}


async def one_course(base: str, meter: CpuMeter) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        token = await guest_token(client)
        cpu_before = meter.read()
        posted = time.time()
        started = time.perf_counter()
        accepted = await create_course(
            client, token, topic="Data engineering", duration_hours=16, auto_finalize=True
        )
        events = await read_events(
            client,
            accepted["events_url"],
            token,
            until={"course.ready", "job.failed"},
            timeout=300,
        )
        wall = time.perf_counter() - started
        cpu_after = meter.read()
    if events[-1].event != "course.ready":
        raise SystemExit(f"course did not complete: {events[-1].data}")
    calls = [e.data["payload"] for e in events if e.event == "llm.call_completed"]

    def latency(task: str) -> list[float]:
        return [c["latency_ms"] / 1000 for c in calls if c["task"] == task]

    lessons = latency("write_lesson")
    assessment = max(latency("quiz") + latency("coding_exercise"))
    modules = sum(1 for e in events if e.event == "lesson.written")
    critical = (
        sum(latency("welcome_plan")) + sum(latency("finalise_modules")) + max(lessons) + assessment
    )
    steps = step_times(events, posted)
    return {
        "modules": modules,
        "wall_s": wall,
        "critical_s": critical,
        "ratio": wall / critical,
        "lesson_sum_s": sum(lessons),
        "gaps_ms": {label: (steps[b] - steps[a]) * 1000 for label, a, b in GAPS},
        "cpu_ms": CpuMeter.used_ms(cpu_before, cpu_after),
        "timeline": module_timeline(events, steps["last_lesson_end"]),
    }


def module_timeline(events: list[Any], origin: float) -> dict[int, dict[str, float]]:
    """Per module position, when each of its steps happened, in ms after ``origin``: its
    calls' starts and ends (from ``llm.call_completed``), ``lesson.written`` and
    ``assessment.ready`` (when they occurred)."""
    rows: dict[int, dict[str, float]] = {}
    for e in events:
        p = e.data.get("payload", {})
        at = (_when(e.data["occurred_at"]) - origin) * 1000
        if e.event == "llm.call_completed" and ":" in (p.get("step") or ""):
            kind, _, position = p["step"].partition(":")
            row = rows.setdefault(int(position), {})
            row[f"{kind} start"] = at - p["latency_ms"]
            row[f"{kind} end"] = at
        elif e.event in ("lesson.written", "assessment.ready") and "order" in p:
            rows.setdefault(int(p["order"]), {})[e.event] = at
    return rows


TIMELINE = (
    "lesson start",
    "lesson end",
    "lesson.written",
    "quiz start",
    "exercise start",
    "quiz end",
    "exercise end",
    "assessment.ready",
)


def report_timeline(result: dict[str, Any]) -> None:
    """The modules' steps in one run, in ms after its last lesson call ended."""
    print("the modules' steps in the median run, ms after the last lesson call ended:")
    print("module " + "".join(f"{label:>17}" for label in TIMELINE))
    for position, row in sorted(result["timeline"].items()):
        cells = "".join(
            f"{row[label]:>17.0f}" if label in row else f"{'-':>17}" for label in TIMELINE
        )
        print(f"{position:>6} {cells}")


def report_where(results: list[dict[str, Any]]) -> None:
    """The medians of the gaps between steps and of each process's CPU per course."""
    print("where the time beyond the calls goes (median over the runs):")
    for label, _, _ in GAPS:
        print(f"  {label:<38} {statistics.median(r['gaps_ms'][label] for r in results):6.0f} ms")
    names = results[0]["cpu_ms"].keys()
    per = {n: statistics.median(r["cpu_ms"][n] for r in results) for n in names}
    total = sum(per.values())
    capacity = statistics.median(r["wall_s"] for r in results) * (os.cpu_count() or 1) * 1000
    print(f"CPU per course (median): {total:.0f} ms in all, {100 * total / capacity:.0f} % of the")
    print(f"  {os.cpu_count()} cores over the wall time; by process:")
    for name, ms in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<14} {ms:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="run each service under cProfile, into DIR")
    parser.add_argument(
        "--timeline", action="store_true", help="print each module's steps in the median run"
    )
    args = parser.parse_args()

    env = fresh_bench_env(
        os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"),
        LECTERN_OFFLINE_LATENCY_MS=str(args.latency_ms),
    )
    cluster = make_cluster(env, Path(tempfile.mkdtemp(prefix="lectern-bench-")))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for name, service in cluster.services.items():
            service.env["LECTERN_PROFILE"] = str(args.profile / f"{name}.prof")
    cluster.start()
    try:
        print(f"offline model latency: {args.latency_ms} ms per call; 8-module autopilot course")
        print(f"{'run':>3} {'modules':>7} {'wall s':>7} {'critical s':>10} {'ratio':>6}")
        ratios, walls, criticals, results = [], [], [], []
        meter = CpuMeter(cluster)
        for run in range(1, args.runs + 1):
            r = asyncio.run(one_course(cluster.gateway, meter))
            results.append(r)
            ratios.append(r["ratio"])
            walls.append(r["wall_s"])
            criticals.append(r["critical_s"])
            print(
                f"{run:>3} {r['modules']:>7} {r['wall_s']:>7.2f} {r['critical_s']:>10.2f} "
                f"{r['ratio']:>6.3f}   (lessons one after another would take "
                f"{r['lesson_sum_s']:.1f} s)"
            )
        best, worst = min(ratios), max(ratios)
        print(
            f"median of {args.runs}: wall {statistics.median(walls):.2f} s, critical path "
            f"{statistics.median(criticals):.2f} s, ratio {statistics.median(ratios):.3f}"
        )
        print(f"ratio wall/critical path: best {best:.3f}, worst {worst:.3f} (target <= 1.1)")
        report_where(results)
        if args.timeline:
            report_timeline(sorted(results, key=lambda r: r["ratio"])[len(results) // 2])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
