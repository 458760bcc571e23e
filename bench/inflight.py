"""Benchmark: in-flight generations in ONE content worker against a slow model.

A fake OpenAI-compatible model (``tests.support.fault_llm``, no faults) answers every
request in ``--latency`` seconds (streamed, after ``--ttft``); one content worker
reaches it as ``openai/...`` with ``LLM_API_BASE`` (the OpenAI SDK), as with a real
provider. ``--n`` valid ``content.write_lesson`` commands are published straight onto
``lectern.commands`` (as an internal system would), and the resulting
``lesson.written`` / ``job.failed`` events are collected from ``lectern.events``.
Nothing else runs: the worker falls back to its shipped prompts without the prompt
registry, and a queue bound to ``#`` with no room stands in for the gateway's event
log (every event is routed, as in a deployment, and dropped at once).

Prints: n, the peak of concurrent generations (requests the model server held open
at once, and the worker's own ``lectern_llm_requests_in_flight``), wall time (first
publish to the last result), throughput (lessons/s), the worker's resident memory
(VmRSS every 100 ms: idle before the load, and the peak), its CPU seconds during the
load, and failures. Exits non-zero if any command failed or did not finish.
Target (issue 9, target 4): >= 1,000 concurrent generations at 5 s model latency,
peak RSS <= 300 MB.

    flock /tmp/lectern-bench.lock .venv/bin/python bench/inflight.py --n 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
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

from shared.contracts.content import WriteLesson, WriteLessonPayload  # noqa: E402
from shared.contracts.course import ModuleSpec  # noqa: E402
from shared.contracts.planner import LearnerProfile  # noqa: E402
from shared.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE  # noqa: E402
from tests.chaos.harness import FaultLLM  # noqa: E402
from tests.support.infra import fresh_bench_env  # noqa: E402
from tests.support.processes import Service, free_port  # noqa: E402
from tests.support.procfs import cpu_seconds, rss_mb  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> None:
    """Open files up to the hard limit (children inherit it): 1,000+ sockets each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def lesson_command(i: int, run: str) -> WriteLesson:
    """A valid ``content.write_lesson`` for course ``i`` of this run (one module each)."""
    course_id = f"bench-{run}-{i}"
    module = ModuleSpec(
        module_id=f"{course_id}-m1",
        order=1,
        title=f"Concurrency, part {i}",
        description="Coroutines, the event loop, and how many things can wait at once.",
        learning_objectives=["Explain what await does", "Run many requests concurrently"],
        estimated_hours=1.5,
    )
    return WriteLesson(
        job_id=f"job-{course_id}",
        correlation_id=f"bench-inflight-{run}",
        user_id="bench-user",
        payload=WriteLessonPayload(
            course_id=course_id,
            course_title="Python asyncio",
            module=module,
            outline=[module.title],
            profile=LearnerProfile(topic="Python asyncio", level="intermediate"),
        ),
    )


class Sampler:
    """VmRSS of the worker every ``every`` seconds, and its in-flight gauge now and then."""

    def __init__(self, pid: int, metrics_url: str, every: float = 0.1) -> None:
        self.pid, self.metrics_url, self.every = pid, metrics_url, every
        self.peak_rss = 0.0
        self.peak_gauge = 0.0
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        started = time.perf_counter()
        tick = 0
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                rss = rss_mb(self.pid)
                self.peak_rss = max(self.peak_rss, rss)
                self.samples.append((time.perf_counter() - started, rss))
                if tick % 10 == 0:  # /metrics costs the worker a little: once a second
                    self.peak_gauge = max(self.peak_gauge, await self.gauge(http))
                tick += 1
                await asyncio.sleep(self.every)

    async def gauge(self, http: httpx.AsyncClient) -> float:
        try:
            text = (await http.get(self.metrics_url)).text
        except httpx.HTTPError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith("lectern_llm_requests_in_flight{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


async def load(args: argparse.Namespace, amqp: str, worker: Service, llm: FaultLLM) -> int:
    pid = worker.proc.pid  # type: ignore[union-attr]
    run = uuid.uuid4().hex[:8]
    commands = [lesson_command(i, run) for i in range(args.n)]
    wanted = {c.message_id for c in commands}
    connection = await aio_pika.connect_robust(amqp)
    async with connection, httpx.AsyncClient(base_url=llm.url, timeout=5) as model:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(EVENTS_EXCHANGE)
        # the gateway's event log binds '#': every event is routed; this one drops them
        sink = await channel.declare_queue(
            f"bench.sink.{run}", exclusive=True, arguments={"x-max-length": 0}
        )
        await sink.bind(events, routing_key="#")
        results = await channel.declare_queue(f"bench.results.{run}", exclusive=True)
        for key in ("lesson.written", "job.failed"):
            await results.bind(events, routing_key=key)

        # idle: the worker is ready and has nothing to do
        await asyncio.sleep(1.0)
        idle_rss = rss_mb(pid)
        cpu_before = cpu_seconds(pid)
        await model.post("/_stats")  # the peak from now on

        written: set[str] = set()
        failed: dict[str, str] = {}
        done = asyncio.Event()
        last_result = 0.0

        async def on_result(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal last_result
            async with message.process():
                body = json.loads(message.body)
                if body.get("schema", "").startswith("lesson.written"):
                    source = body.get("causation_id")
                    if source in wanted:
                        written.add(source)
                elif body.get("schema", "").startswith("job.failed"):
                    payload = body.get("payload", {})
                    source = payload.get("failed_message_id") or body.get("causation_id")
                    if source in wanted:
                        failed[source] = str(payload.get("reason") or payload)[:300]
                last_result = time.perf_counter()
                if len(written) + len(failed) >= len(wanted):
                    done.set()

        await results.consume(on_result)
        profiler = None
        if args.py_spy:
            spy = shutil.which("py-spy") or "py-spy"
            profiler = await asyncio.create_subprocess_exec(
                spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
                "--nonblocking", "--output", str(args.py_spy),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        model_cpu_before = cpu_seconds(llm.proc.pid)  # type: ignore[union-attr]
        sampler = Sampler(pid, f"{worker.url}/metrics")
        sampling = asyncio.create_task(sampler.run())
        commands_x = await channel.get_exchange(COMMANDS_EXCHANGE)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                commands_x.publish(
                    aio_pika.Message(
                        json.dumps(c.to_wire()).encode(),
                        content_type="application/json",
                        message_id=c.message_id,
                        correlation_id=c.correlation_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=WriteLesson.routing_key(),
                    mandatory=True,
                )
                for c in commands
            )
        )
        published = time.perf_counter() - started
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            pass
        wall = (last_result or time.perf_counter()) - started
        cpu = cpu_seconds(pid) - cpu_before
        model_cpu = cpu_seconds(llm.proc.pid) - model_cpu_before  # type: ignore[union-attr]
        sampling.cancel()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            await asyncio.wait_for(profiler.wait(), 30)
        stats = (await model.get("/_stats")).json()

    missing = len(wanted) - len(written) - len(failed)
    print(f"model: {args.latency:g} s per answer (first text after {args.ttft:g} s), streamed")
    print(f"n                            {args.n}")
    print(f"published in                 {published:.2f} s")
    print(f"peak concurrent generations  {stats['peak']} (model server); "
          f"{sampler.peak_gauge:.0f} (worker's in-flight gauge, sampled 1/s)")  # fmt: skip
    print(f"wall time                    {wall:.2f} s (first publish to last result)")
    print(f"throughput                   {len(written) / wall:.1f} lessons/s")
    print(f"RSS idle before load         {idle_rss:.0f} MB")
    print(f"RSS peak                     {sampler.peak_rss:.0f} MB")
    print(f"worker CPU during load       {cpu:.1f} s ({cpu / wall:.2f} cores)")
    print(f"model server CPU             {model_cpu:.1f} s ({model_cpu / wall:.2f} cores)")
    print(f"written / failed / missing   {len(written)} / {len(failed)} / {missing}")
    for source, error in list(failed.items())[:5]:
        print(f"  failed {source}: {error}")
    ok = not failed and not missing
    rss_ok = sampler.peak_rss <= args.max_rss_mb
    print(
        f"target: >= 1000 concurrent at {args.latency:g} s, RSS <= {args.max_rss_mb} MB: "
        f"{'met' if ok and stats['peak'] >= 1000 and rss_ok else 'NOT met'}"
    )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="write_lesson commands")
    parser.add_argument("--latency", type=float, default=5.0, help="model seconds per answer")
    parser.add_argument("--ttft", type=float, default=0.2, help="model seconds to first text")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    parser.add_argument("--max-rss-mb", type=int, default=300)
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="profile the worker during the load with py-spy (on PATH): collapsed stacks",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the worker (e.g. LECTERN_PREFETCH=32)",
    )
    args = parser.parse_args()
    raise_nofile()
    extra = dict(item.split("=", 1) for item in args.env)
    log_dir = Path(tempfile.mkdtemp(prefix="lectern-bench-inflight-"))
    llm = FaultLLM(log_dir, ["--ttft", str(args.ttft), "--latency", str(args.latency)])
    llm.start()
    worker = None
    try:
        env = fresh_bench_env(
            os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"),
            LLM_MODEL="openai/bench",
            LLM_API_BASE=f"{llm.url}/v1",
            LLM_API_KEY="bench",
            **extra,
        )
        worker = Service("content", free_port(), env, log_dir / "content.log")
        worker.start()
        worker.wait_ready(120)
        code = asyncio.run(load(args, env["AMQP_URL"], worker, llm))
        if code:
            print(f"logs: {log_dir}")
    finally:
        if worker is not None:
            worker.stop()
        llm.stop()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
