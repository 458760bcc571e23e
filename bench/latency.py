"""Benchmark: what Lectern adds to one LLM step, and how soon streamed text reaches a client.

Issue 9, target 2 (added latency per LLM step: p50 <= 5 ms, p99 reported) and target 7
(time to first chunk: the first ``job.chunk`` reaches the SSE client <= 20 ms after the
model produced it). A local OpenAI-compatible server (``tests.support.fault_llm``, no
faults, a fixed time to first token and stream time) answers both paths with the same
text at the same pace:

- A, Lectern: ``POST /v1/courses`` (a chat course, no autopilot) → gateway → broker →
  planner (work lease, the LLM call streamed as ``job.chunk`` events, outbox) → broker →
  gateway (event log, live fan-out) → SSE, until ``course.plan_proposed``.
  Clock: POST sent → ``course.plan_proposed`` received.
- B, direct: ``litellm.acompletion(stream=True)`` from this process with the messages the
  planner sends (checked against the server's prompt hash). Clock: request → last chunk.

Requests run one at a time, A and B alternating, after a warm-up. Printed: p50, p90, p99
and max of A, B, the added latency A - B (p50 - p50, p99 - p99, ...), and the time to
first chunk (the server writing the first content chunk → the client receiving the first
``job.chunk``; one machine, one clock: ``time.time()``), and the CPU each process
(the services, RabbitMQ, PostgreSQL) used between an A request's POST and its last
event, per request. ``--breakdown`` also taps
``lectern.events`` to show where A's time goes (it adds a consumer to every event).

    .venv/bin/python bench/latency.py --runs 200 [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from services.planner.prompts import WELCOME_PLAN, welcome_variables  # noqa: E402
from shared.contracts.planner import LearnerProfile  # noqa: E402
from shared.llm.library import LIBRARY  # noqa: E402
from tests.chaos.harness import FaultLLM  # noqa: E402
from tests.support.client import PROFILE, bearer, guest_token  # noqa: E402
from tests.support.infra import fresh_bench_env  # noqa: E402
from tests.support.processes import make_cluster  # noqa: E402
from tests.support.procfs import cpu_between, cpu_reading  # noqa: E402
from tests.support.sse import read_events  # noqa: E402

MODEL = "openai/lectern-bench"
SERVICES = ("gateway", "planner", "prompts")  # what a chat plan needs
FINAL = {"course.plan_proposed", "job.failed"}


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    cells = [percentile(ms, p) for p in (50, 90, 99)] + [max(ms)]
    return f"{name:<46}" + "".join(f"{c:>9.1f}" for c in cells) + f"   n={len(ms)}"


def diff_row(name: str, a: list[float], b: list[float]) -> str:
    cells = [(percentile(a, p) - percentile(b, p)) * 1000 for p in (50, 90, 99)]
    cells.append((max(a) - max(b)) * 1000)
    return f"{name:<46}" + "".join(f"{c:>9.1f}" for c in cells)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}); load average {load}"


def prompt_sha(messages: list[dict[str, Any]]) -> str:
    """The fault server's hash of a request's messages."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def planner_messages(topic: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages and model settings of the planner's welcome plan for ``topic``."""
    template = LIBRARY[WELCOME_PLAN]
    profile = LearnerProfile.model_validate({**PROFILE, "topic": topic})
    settings = {
        k: v
        for k, v in (
            ("temperature", template.model.temperature),
            ("max_tokens", template.model.max_tokens),
        )
        if v is not None
    }
    return template.render(welcome_variables(profile)), settings


# --------------------------------------------------------------------------- path A


async def lectern_step(client: httpx.AsyncClient, token: str, topic: str) -> dict[str, Any]:
    """Path A: one chat plan through Lectern; times in wall-clock seconds."""
    sent = time.time()
    resp = await client.post("/v1/courses", json={**PROFILE, "topic": topic}, headers=bearer(token))
    accepted = time.time()
    if resp.status_code != 202:
        raise RuntimeError(f"POST /v1/courses: {resp.status_code} {resp.text}")
    body = resp.json()
    events = await read_events(client, body["events_url"], token, until=FINAL, timeout=60)
    if not events or events[-1].event != "course.plan_proposed":
        raise RuntimeError(f"the plan failed: {[(e.event, e.data) for e in events[-3:]]}")
    done = events[-1].received
    chunks = [e.received for e in events if e.event == "job.chunk"]
    return {
        "topic": topic,
        "job_id": body["job_id"],
        "sent": sent,
        "accepted": accepted,
        "first_chunk": chunks[0] if chunks else None,
        "chunks": len(chunks),
        "done": done,
    }


# --------------------------------------------------------------------------- path B


async def direct_step(litellm: Any, api_base: str, topic: str) -> dict[str, Any]:
    """Path B: the same request straight from litellm; times in wall-clock seconds."""
    messages, settings = planner_messages(topic)
    sent = time.time()
    response = await litellm.acompletion(
        model=MODEL,
        api_base=api_base,
        api_key="bench",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
        timeout=60,
        **settings,
    )
    first = None
    text = []
    async for chunk in response:
        choices = getattr(chunk, "choices", None) or []
        content = getattr(choices[0].delta, "content", None) if choices else None
        if content:
            first = first or time.time()
            text.append(content)
    done = time.time()
    if not text:
        raise RuntimeError("the direct call streamed no text")
    return {"topic": topic, "sent": sent, "first_chunk": first, "done": done}


# --------------------------------------------------------------------------- breakdown


class EventTap:
    """Notes when each event of a job is on ``lectern.events`` (``--breakdown``)."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.seen: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self._connection: Any = None

    async def start(self) -> None:
        import aio_pika

        self._connection = await aio_pika.connect(self.amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.get_exchange("lectern.events")
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")

        async def on_message(message: Any) -> None:
            now = time.time()
            body = json.loads(message.body)
            self.seen[str(body.get("job_id"))].append((now, str(body.get("schema"))))

        await queue.consume(on_message, no_ack=True)

    def first(self, job_id: str, prefix: str) -> float | None:
        return next((t for t, schema in self.seen[job_id] if schema.startswith(prefix)), None)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()


# --------------------------------------------------------------------------- running it


async def run(
    args: argparse.Namespace, gateway: str, llm: FaultLLM, amqp_url: str, pids: dict[str, int]
) -> None:
    from shared.llm import load_litellm

    litellm = await asyncio.to_thread(load_litellm)
    api_base = f"{llm.url}/v1"
    tap = EventTap(amqp_url) if args.breakdown else None
    if tap is not None:
        await tap.start()
    a_runs: list[dict[str, Any]] = []
    b_runs: list[dict[str, Any]] = []
    a_cpu: dict[str, float] = defaultdict(float)  # CPU seconds during A's requests
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        token = await guest_token(client)
        total = args.warmup + args.runs
        for i in range(total):
            # alternate which goes first, so drift in the machine's load hits both alike
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for path in order:
                if path == "A":
                    before = cpu_reading(pids)
                    a = await lectern_step(client, token, f"Latency probe A{i}")
                    if i >= args.warmup:
                        a_runs.append(a)
                        for name, sec in cpu_between(before, cpu_reading(pids)).items():
                            a_cpu[name] += sec
                else:
                    b = await direct_step(litellm, api_base, f"Latency probe B{i}")
                    if i >= args.warmup:
                        b_runs.append(b)
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{total} requests each way", flush=True)
    await asyncio.sleep(0.5)  # the server logs a stream when it ends
    if tap is not None:
        await tap.stop()

    records = {r.get("topic"): r for r in llm.records()}
    mismatched = 0
    for run_ in a_runs + b_runs:
        record = records.get(run_["topic"])
        if record is None or record.get("outcome") != "ok":
            raise SystemExit(f"no clean server record for {run_['topic']}: {record}")
        run_["server"] = record
        if record["prompt_sha"] != prompt_sha(planner_messages(run_["topic"])[0]):
            mismatched += 1

    a_total = [r["done"] - r["sent"] for r in a_runs]
    b_total = [r["done"] - r["sent"] for r in b_runs]
    ttfc = [r["first_chunk"] - r["server"]["t_first"] for r in a_runs if r["first_chunk"]]
    a_model = [r["server"]["t_end"] - r["server"]["t_start"] for r in a_runs]
    b_model = [r["server"]["t_end"] - r["server"]["t_start"] for r in b_runs]

    print()
    print(f"machine: {machine()}")
    print(
        f"model server: time to first token {args.ttft * 1000:.0f} ms, then "
        f"{args.latency * 1000:.0f} ms of stream; {args.runs} requests each way after "
        f"{args.warmup} warm-up, one at a time, A and B alternating"
    )
    if mismatched:
        print(f"WARNING: {mismatched} requests did not send the planner's exact messages")
    else:
        print("both paths sent the planner's exact messages (server prompt hash)")
    print(f"{'':<46}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}   (ms)")
    print(row("A Lectern: POST -> course.plan_proposed (SSE)", a_total))
    print(row("B litellm direct: request -> last chunk", b_total))
    print(diff_row("A - B added latency (per percentile)", a_total, b_total))
    print(row("time to first chunk: model -> SSE client", ttfc))
    print(row("  model server time, A's requests", a_model))
    print(row("  model server time, B's requests", b_model))
    a_own = [x - y for x, y in zip(a_total, a_model, strict=True)]
    b_own = [x - y for x, y in zip(b_total, b_model, strict=True)]
    print(row("  A minus its own model server time", a_own))
    print(row("  B minus its own model server time", b_own))
    if tap is not None:
        breakdown(a_runs, tap)
    per_plan = {name: sec / len(a_runs) * 1000 for name, sec in a_cpu.items()}
    print(
        "CPU per A request (between its POST and its last event; every process): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in per_plan.items())
        + f"; all {sum(per_plan.values()):.1f} ms "
        f"(median {percentile([r['chunks'] for r in a_runs], 50):.0f} job.chunk events a request)"
    )
    added = (percentile(a_total, 50) - percentile(b_total, 50)) * 1000
    first = percentile(ttfc, 50) * 1000 if ttfc else float("nan")
    print(
        f"target 2, added p50 <= 5 ms: {added:.1f} ms "
        f"(p99 {(percentile(a_total, 99) - percentile(b_total, 99)) * 1000:.1f} ms)"
        f" -> {'met' if added <= 5 else 'NOT met'}"
    )
    worst = percentile(ttfc, 99) * 1000 if ttfc else float("nan")
    print(
        f"target 7, first chunk <= 20 ms: p50 {first:.1f} ms, p99 {worst:.1f} ms "
        f"-> {'met' if first <= 20 else 'NOT met'} at p50, "
        f"{'met' if worst <= 20 else 'NOT met'} at p99"
    )


def breakdown(a_runs: list[dict[str, Any]], tap: EventTap) -> None:
    """Where A's time goes, from the server's log and the tap on lectern.events."""
    stages: dict[str, list[float]] = defaultdict(list)
    for r in a_runs:
        s, job = r["server"], r["job_id"]
        chunk = tap.first(job, "job.chunk.")
        usage = tap.first(job, "llm.call_completed.")
        proposed = tap.first(job, "course.plan_proposed.")
        stages["POST sent -> 202 received"].append(r["accepted"] - r["sent"])
        stages["POST sent -> model request arrives"].append(s["t_start"] - r["sent"])
        stages["model request (server time)"].append(s["t_end"] - s["t_start"])
        if chunk is not None:
            stages["model 1st chunk -> job.chunk on broker"].append(chunk - s["t_first"])
            if r["first_chunk"]:
                stages["job.chunk on broker -> SSE client"].append(r["first_chunk"] - chunk)
        if usage is not None:
            stages["model stream ends -> llm.call_completed"].append(usage - s["t_end"])
        if proposed is not None:
            stages["model stream ends -> plan_proposed on broker"].append(proposed - s["t_end"])
            stages["plan_proposed on broker -> SSE client"].append(r["done"] - proposed)
    print("where A's time goes (tap on lectern.events):")
    for name, values in stages.items():
        print(row(f"  {name}", values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="measured requests each way")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
    parser.add_argument("--ttft", type=float, default=0.05, help="model: s to the first token")
    parser.add_argument("--latency", type=float, default=0.2, help="model: s for the rest")
    parser.add_argument("--breakdown", action="store_true", help="tap lectern.events")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lectern-bench-latency-"))
    llm = FaultLLM(workdir, ["--ttft", str(args.ttft), "--latency", str(args.latency)])
    llm.start()
    try:
        env = fresh_bench_env(
            os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"),
            LLM_MODEL=MODEL,
            LLM_API_BASE=f"{llm.url}/v1",
            LLM_API_KEY="bench",
            # the checks still run on every request; the limits just leave room for it
            LECTERN_RATE_LIMIT_GENERATE_USER="1000000/hour",
            LECTERN_RATE_LIMIT_GENERATE_IP="1000000/hour",
            LECTERN_BUDGET_GUEST_TOKENS="1000000000",
        )
        cluster = make_cluster(env, workdir / "logs")
        cluster.start(SERVICES)
        try:
            pids = {n: s.proc.pid for n, s in cluster.services.items() if s.proc}
            asyncio.run(run(args, cluster.gateway, llm, env["AMQP_URL"], pids))
        finally:
            cluster.stop()
    finally:
        llm.stop()
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()
