"""A chaos run: many autopilot courses at once while worker processes are killed (-9) and
replaced, RabbitMQ is restarted once and PostgreSQL once; then count what went wrong.

    python -m tests.chaos.run   # CHAOS_COURSES (30), CHAOS_SECONDS (120), CHAOS_SEED (1),
                                # CHAOS_KILL_EVERY (5 s), CHAOS_DOWN_S (2 s), CHAOS_WORKDIR

Prints the figures as a table and exits 1 unless lost, not accepted, duplicated,
unexpected and re-billed are all 0 and every durable queue has its consumer back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.chaos import checks
from tests.chaos.clients import CourseRun, Gateways, HttpTally, run_course
from tests.chaos.duplicator import Duplicates, duplicate
from tests.chaos.harness import DEFAULT_REPLICAS, Stage, build_stage

# rates of the fault server: about one request in five meets a fault
DEFAULT_LLM_ARGS = [
    "--ttft", "0.15", "--latency", "0.6",
    "--rate-429", "0.05", "--rate-5xx", "0.05", "--timeout-rate", "0.02",
    "--cut-stream", "0.05", "--invalid-json", "0.02",
    "--retry-after", "1", "--hang", "8",
]  # fmt: skip


@dataclass
class ChaosConfig:
    """How big and how rough a run is."""

    courses: int = 30
    seconds: float = 120.0  # the chaos phase: kills and the two restarts happen within it
    launch_over: float = 0.75  # share of ``seconds`` over which courses are created
    kill_every: float = 5.0
    rabbit_restart_at: float = 0.3  # share of ``seconds``
    postgres_restart_at: float = 0.65
    down_s: float = 2.0  # how long each restart keeps RabbitMQ or PostgreSQL down
    duplicate_share: float = 0.2  # of the costly commands and counted events, sent twice
    settle: float = 150.0  # after the chaos phase, how long courses may take to finish
    replicas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLICAS))
    llm_args: list[str] = field(default_factory=lambda: list(DEFAULT_LLM_ARGS))
    seed: int = 1


async def _restarts(stage: Stage, cfg: ChaosConfig, started: float, log: list[str]) -> None:
    """Restart RabbitMQ once and PostgreSQL once, at their moments of the chaos phase."""
    plan = sorted([(cfg.rabbit_restart_at, "rabbitmq"), (cfg.postgres_restart_at, "postgresql")])
    for share, what in plan:
        await asyncio.sleep(max(0.0, started + share * cfg.seconds - time.monotonic()))
        began = time.monotonic()
        if what == "rabbitmq":
            await asyncio.to_thread(stage.rabbit.restart, cfg.down_s)
        else:
            await asyncio.to_thread(stage.postgres.restart, cfg.down_s)
        log.append(f"{what} restarted at {began - started:.0f}s ({time.monotonic() - began:.1f}s)")


async def _courses(
    cfg: ChaosConfig, run_id: str, gateways: Gateways, tally: HttpTally, deadline: float
) -> list[CourseRun]:
    gap = cfg.launch_over * cfg.seconds / max(1, cfg.courses)

    async def one(index: int) -> CourseRun:
        await asyncio.sleep(index * gap)
        return await run_course(index, run_id, gateways, tally, deadline)

    return list(await asyncio.gather(*(one(i) for i in range(cfg.courses))))


async def _run(stage: Stage, cfg: ChaosConfig) -> checks.Findings:
    rng = random.Random(cfg.seed)
    run_id = uuid.uuid4().hex[:6]
    tally = HttpTally()
    started = time.monotonic()
    chaos_until = started + cfg.seconds
    deadline = chaos_until + cfg.settle
    restarts: list[str] = []
    kills = asyncio.create_task(stage.kill_loop(cfg.kill_every, chaos_until, rng))
    restarting = asyncio.create_task(_restarts(stage, cfg, started, restarts))
    copies, stop_copying = Duplicates(), asyncio.Event()
    copy_rng = random.Random(cfg.seed)
    duplicating = asyncio.create_task(
        duplicate(stage.rabbit.url, cfg.duplicate_share, stop_copying, copy_rng, copies)
    )
    runs = await _courses(cfg, run_id, Gateways(stage.gateways), tally, deadline)
    await asyncio.gather(kills, restarting)
    stop_copying.set()
    await duplicating  # the copies still due go out
    await asyncio.sleep(5.0)  # and are handled (or wrongly re-done) before we count
    findings = checks.Findings(seconds=time.monotonic() - started)
    checks.judge_clients(runs, tally, findings)
    findings.kills = len(stage.kills)
    findings.duplicates_sent = copies.published
    findings.duplicates_seen = copies.seen
    findings.exits = list(stage.exits)
    findings.rabbit_restarts = sum("rabbitmq" in r for r in restarts)
    findings.postgres_restarts = sum("postgresql" in r for r in restarts)
    problems = await asyncio.to_thread(stage.wait_all_ready, 120)
    findings.unexpected += [f"{name} not ready at the end: {why}" for name, why in problems.items()]
    findings.detached_queues = detached(stage)
    await asyncio.sleep(1.0)  # the fault server writes a stream's record when it ends
    conn = await asyncpg.connect(stage.postgres.url("lectern").replace("+asyncpg", ""))
    try:
        unacknowledged = {t for run in runs for t in run.unacknowledged_topics}
        await checks.judge_llm(conn, stage.llm.records(), findings, unacknowledged)
    finally:
        await conn.close()
    return findings


def detached(stage: Stage) -> list[str]:
    """Durable queues some service consumes that have no consumer (retry and dead-letter
    queues are consumed by nobody, by design)."""
    consumers = stage.rabbit.consumers()
    # per-process queues (``gateway.live.<id>``) have two dots
    durable = [
        q for q in stage.rabbit.queues() if not q.endswith((".retry", ".dlq")) and q.count(".") == 1
    ]
    return sorted(q for q in durable if consumers.get(q, 0) == 0)


def run_chaos(cfg: ChaosConfig, workdir: Path) -> checks.Findings:
    """Build the stage in ``workdir``, run the chaos, tear everything down; the findings."""
    stage = build_stage(workdir, [*cfg.llm_args, "--seed", str(cfg.seed)])
    try:
        stage.add_replicas(cfg.replicas)
        stage.start_all()
        return asyncio.run(_run(stage, cfg))
    finally:
        stage.close()


def main() -> int:
    cfg = ChaosConfig(
        courses=int(os.environ.get("CHAOS_COURSES", "30")),
        seconds=float(os.environ.get("CHAOS_SECONDS", "120")),
        seed=int(os.environ.get("CHAOS_SEED", "1")),
        kill_every=float(os.environ.get("CHAOS_KILL_EVERY", "5")),
        down_s=float(os.environ.get("CHAOS_DOWN_S", "2")),
    )
    workdir = Path(os.environ.get("CHAOS_WORKDIR") or tempfile.mkdtemp(prefix="lectern-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # the clients' and the duplicator's AMQP reconnect noise goes to a file
    logging.basicConfig(level=logging.INFO, filename=workdir / "chaos.log")
    print(f"chaos run: {cfg.courses} courses, {cfg.seconds:.0f}s of chaos; logs in {workdir}")
    findings = run_chaos(cfg, workdir)
    print(findings.table())
    bad = {k: v for k, v in findings.headline().items() if v} or (
        {"detached queues": len(findings.detached_queues)} if findings.detached_queues else {}
    )
    print("FAILED: " + ", ".join(f"{k} {v}" for k, v in bad.items()) if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
