"""Benchmark: the gateway's event log, the serial step every event passes through.

The ``gateway.event-log`` queue is consumed one event at a time, in order (an event's
sequence number follows causality), so the time to store one event bounds the events
per second of the whole deployment and adds to every event's delivery to its SSE
streams. This stores ``--events`` events one after another, as that consumer does, on
a fresh database: a chunk-heavy mix over ``--jobs`` jobs with an ``llm.call_completed``
every ``--call-every`` events (stored with the charge of its tokens), and prints the
time per event (p50, p99), the events per second and the CPU per event in this process.
``--batch N`` stores them N at a time in one transaction each, as the log does under
load (``services/gateway/event_batches.py``), and prints the same per batch.

    .venv/bin/python bench/event_log.py --events 3000 [--batch 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.client import event_body  # noqa: E402
from tests.support.infra import fresh_bench_env  # noqa: E402


def body(job_id: str, schema: str, **payload: object) -> dict[str, object]:
    return event_body(job_id, schema, payload, f"user-{job_id}")


async def run(args: argparse.Namespace) -> None:
    from services.gateway.streams import EventLog
    from shared.db import make_engine, make_sessionmaker
    from shared.settings import get_settings

    settings = get_settings("gateway")
    engine = make_engine(settings)
    # configured as the gateway's (services/gateway/app.py)
    writer = make_engine(settings, pool_size=2, pre_ping=False)
    log = EventLog(make_sessionmaker(engine), settings, writer=writer)
    jobs = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(args.jobs)]
    bodies = []
    for i in range(args.events + args.warmup):
        job = jobs[i % len(jobs)]
        if i % args.call_every == args.call_every - 1:
            bodies.append(body(job, "llm.call_completed.v1", input_tokens=300, output_tokens=90))
        else:
            bodies.append(
                body(job, "job.chunk.v1", step="lesson", attempt=1, index=i, text="x" * 120)
            )
    size = args.batch
    groups = [bodies[i : i + size] for i in range(0, len(bodies), size)]
    warm, timed = groups[: -(-args.warmup // size)], groups[-(-args.warmup // size) :]

    async def store(group: list[dict[str, object]]) -> int:
        if size == 1:
            return int(await log.record(group[0]) is not None)
        return sum(s is not None for s in await log.record_many(group))

    for group in warm:
        await store(group)
    times = []
    n = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for group in timed:
        t = time.perf_counter()
        stored = await store(group)
        times.append(time.perf_counter() - t)
        assert stored == len(group), (stored, len(group))
        n += stored
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await engine.dispose()
    await writer.dispose()
    times.sort()
    how = "one at a time" if size == 1 else f"in batches of {size}"
    print(f"events stored {how}: {n} ({args.jobs} jobs, a call every {args.call_every})")
    print(
        f"  per {'event' if size == 1 else 'batch'}: p50 {statistics.median(times) * 1000:.2f} ms, "
        f"p99 {times[max(0, int(len(times) * 0.99) - 1)] * 1000:.2f} ms"
    )
    print(f"  rate: {n / wall:,.0f} events/s; CPU in this process {cpu / n * 1000:.3f} ms/event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--call-every", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1, help="events per transaction")
    args = parser.parse_args()
    env = fresh_bench_env()
    os.environ.update(env)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
