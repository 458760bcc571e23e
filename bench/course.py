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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.client import create_course, guest_token  # noqa: E402
from tests.support.infra import fresh_bench_env  # noqa: E402
from tests.support.processes import make_cluster  # noqa: E402
from tests.support.sse import read_events  # noqa: E402


async def one_course(base: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        token = await guest_token(client)
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
    return {
        "modules": modules,
        "wall_s": wall,
        "critical_s": critical,
        "ratio": wall / critical,
        "lesson_sum_s": sum(lessons),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=1000)
    args = parser.parse_args()

    env = fresh_bench_env(
        os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"),
        LECTERN_OFFLINE_LATENCY_MS=str(args.latency_ms),
    )
    cluster = make_cluster(env, Path(tempfile.mkdtemp(prefix="lectern-bench-")))
    cluster.start()
    try:
        print(f"offline model latency: {args.latency_ms} ms per call; 8-module autopilot course")
        print(f"{'run':>3} {'modules':>7} {'wall s':>7} {'critical s':>10} {'ratio':>6}")
        ratios, walls, criticals = [], [], []
        for run in range(1, args.runs + 1):
            r = asyncio.run(one_course(cluster.gateway))
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
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
