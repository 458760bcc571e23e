"""Benchmark: scale-out speed, from a worker's process start to its first consumed message.

For each worker (planner, content, assessment, prompts): a command is waiting in its
queue before the process starts (as when KEDA adds a replica for a backlog); the
clock runs from spawning the process until the queue is empty (the message was
taken and handled: a command no handler knows is dead-lettered at once, which is
consuming it too) and until ``/readyz`` answers 200. Target: first message <= 5 s.

    .venv/bin/python bench/startup.py --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.infra import BENCH_VHOST, fresh_bench_env  # noqa: E402
from tests.support.processes import Service, free_port  # noqa: E402

AMQP = f"amqp://guest:guest@127.0.0.1:5672/{BENCH_VHOST}"
WORKERS = ("planner", "content", "assessment", "prompts")


async def queue_depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int | None:
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelClosed:
        return None
    return int(queue.declaration_result.message_count)


async def one_start(name: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """Seconds from spawn to the waiting message consumed, and to /readyz 200."""
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("lectern.commands")
        body = {
            "message_id": str(uuid.uuid4()),
            "job_id": str(uuid.uuid4()),
            "correlation_id": "bench-startup",
            "schema": f"{name}.bench_probe.v1",
            "payload": {},
        }
        await exchange.publish(
            aio_pika.Message(json.dumps(body).encode(), content_type="application/json"),
            routing_key=f"{name}.bench_probe",
        )
        service = Service(name, free_port(), env, log_dir / f"{name}.log")
        started = time.perf_counter()
        service.start()
        consumed = ready = None
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                while consumed is None or ready is None:
                    now = time.perf_counter() - started
                    if now > 60:
                        raise SystemExit(f"{name} did not start in 60 s: {service.log_tail()}")
                    depth = await queue_depth(channel, f"{name}.commands")
                    if consumed is None and depth == 0:
                        consumed = now
                    if ready is None:
                        try:
                            if (await http.get(f"{service.url}/readyz")).status_code == 200:
                                ready = now
                        except httpx.HTTPError:
                            pass
                    await asyncio.sleep(0.02)
        finally:
            service.stop()
    return consumed, ready


async def main(runs: int, env: dict[str, str]) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="lectern-bench-startup-"))
    # one start each first: declares every queue, so the probe waits in it
    for name in WORKERS:
        service = Service(name, free_port(), env, log_dir / f"{name}.log")
        service.start()
        service.wait_ready()
        service.stop()
    print(f"{'worker':<11} {'first message p50 / max (s)':>28} {'ready p50 / max (s)':>21}")
    for name in WORKERS:
        firsts, readies = [], []
        for _ in range(runs):
            first, ready = await one_start(name, env, log_dir)
            firsts.append(first)
            readies.append(ready)
        print(
            f"{name:<11} {statistics.median(firsts):>17.2f} / {max(firsts):<8.2f}"
            f" {statistics.median(readies):>11.2f} / {max(readies):.2f}"
        )
    print("target: first message <= 5 s after the process starts")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = fresh_bench_env(os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"))
    asyncio.run(main(args.runs, env))
