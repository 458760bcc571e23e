"""Benchmark: SSE capacity of one gateway process (issue 9, target 5).

Starts one gateway on a fresh database and virtual host, makes one guest user and
``--streams`` jobs owned by it (rows inserted straight into ``gateway.jobs``: the
benchmark measures streams, not course creation), and opens one event stream per
job from a separate load-client process (``tests/support/sse_load.py``: raw asyncio
protocols on uvloop, so the client is not the bottleneck; its own CPU time is
printed). Once every stream is open and has been held idle for ``--hold`` s, one
``job.chunk`` event is published for each of ``--fanout`` jobs onto
``lectern.events``, as fast as the broker confirms them, and the time from each
publish to its stream receiving it is measured (wall clock, one machine). The
event goes the whole way: the gateway's event log stores it, then fans it out to
every replica's live queue, which hands it to the open stream. ``--via live``
publishes stored-looking events straight onto the live fan-out exchange instead,
as the log does, to see the read side alone.

Two deliveries, one after the other, to the same open streams: first one event for a
job that ``--fanout`` of the streams watch (a class following one course: the gateway's
own fan-out, one broker message reaching 1,000 streams), then one event for each of
``--fanout`` other jobs, each watched by one stream (1,000 events published in one
burst: every one stored by the log and fanned out).

Prints: streams held, time to open them all, publish → receipt p50/p95/p99/max and
how many arrived, the gateway's RSS and CPU while holding the streams idle and
while delivering, the database transactions per second while idle, the most
database connections the gateway held, and the load client's own CPU.
Target: >= 10,000 open streams; p99 <= 100 ms for an event to each of 1,000.

    flock /tmp/lectern-bench.lock .venv/bin/python bench/sse.py --streams 10000 --fanout 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.client import event_body  # noqa: E402
from tests.support.infra import BENCH_DB, BENCH_VHOST, fresh_bench_env  # noqa: E402
from tests.support.processes import Service, free_port  # noqa: E402
from tests.support.procfs import cpu_seconds, rss_mb  # noqa: E402
from tests.support.sse_load import raise_nofile_limit  # noqa: E402

PG = os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432")
AMQP = f"amqp://guest:guest@127.0.0.1:5672/{BENCH_VHOST}"


class ProcStats:
    """CPU seconds and RSS of a process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def nofile(self) -> str:
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return line.split()[3]  # the soft limit
        return "?"

    def rss_mb(self) -> float:
        return rss_mb(self.pid)


class Sampler:
    """The most database connections of the bench database seen, sampled in the background."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.max_connections = 0
        self._task: asyncio.Task[None] | None = None

    async def connections(self) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                BENCH_DB,
            )
        )

    async def commits(self) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
                BENCH_DB,
            )
        )

    async def _run(self) -> None:
        while True:
            self.max_connections = max(self.max_connections, await self.connections())
            await asyncio.sleep(0.25)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def envelope(job_id: str, user_id: str) -> dict[str, Any]:
    payload = {"step": "bench", "text": "x" * 64, "attempt": 1, "index": 0}
    return event_body(job_id, "job.chunk.v1", payload, user_id)


async def publish_all(job_ids: list[str], user_id: str, via: str) -> dict[str, float]:
    """One event per job, published concurrently with confirms; each one's publish time.

    ``via="live"``: as the event log fans a stored event out.
    """
    sent: dict[str, float] = {}
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = "lectern.events" if via == "events" else "lectern.gateway.live"
        exchange = await channel.get_exchange(name)

        async def publish(body: dict[str, Any], jobs: list[str]) -> None:
            message = aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                message_id=str(uuid.uuid4()),
            )
            now = time.time()
            sent.update(dict.fromkeys(jobs, now))
            await exchange.publish(message, routing_key="job.chunk")

        if via == "events":
            sends = [publish(envelope(j, user_id), [j]) for j in job_ids]
        else:  # as the event log fans a stored event out
            sends = [
                publish(
                    {"job_id": j, "seq": 1, "event": "job.chunk", "body": envelope(j, user_id)}, [j]
                )
                for j in job_ids
            ]
        await asyncio.gather(*sends)
    return sent


class Profiler:
    """``py-spy record`` of the gateway for one phase (``--profile``), as collapsed stacks."""

    def __init__(self, pyspy: str | None, pid: int, out: Path) -> None:
        self.proc = None
        if pyspy:
            command = [pyspy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking"]
            self.proc = subprocess.Popen(
                [*command, "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # attached before the phase starts
            print(f"profile: {out}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)


class Client:
    """The load-client process, driven over its stdin/stdout."""

    def __init__(self, url: str, token: str, jobs_file: Path, concurrency: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.sse_load",
                "--url",
                url,
                "--token",
                token,
                "--jobs",
                str(jobs_file),
                "--concurrency",
                str(concurrency),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line:
            raise SystemExit(f"load client exited ({self.proc.poll()})")
        return dict(json.loads(line))

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return await self.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace, gateway: Service, log_dir: Path) -> None:
    assert gateway.proc is not None
    proc = ProcStats(gateway.proc.pid)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        resp = await http.post("/v1/auth/guest")
        resp.raise_for_status()
        token = resp.json()["access_token"]
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    job_ids = [f"bench-{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(args.streams)]
    # the streams' jobs, one line each: the first ``fanout`` streams watch one job
    shared, solo = job_ids[0], job_ids[args.fanout : 2 * args.fanout]
    streamed = [shared] * args.fanout + job_ids[args.fanout :]
    pg = await asyncpg.connect(f"postgresql://{PG}/{BENCH_DB}")
    await pg.execute(
        "INSERT INTO gateway.jobs (job_id, user_id, tenant_id, kind, final_events, status,"
        " last_seq) SELECT j, $2, 'default', 'bench', '[\"course.ready\", \"job.failed\"]',"
        " 'running', 0 FROM unnest($1::text[]) AS j",
        job_ids,
        user_id,
    )
    jobs_file = log_dir / "jobs.txt"
    jobs_file.write_text("\n".join(streamed) + "\n")
    sampler = Sampler(pg)
    sampler.start()
    rss_before, cpu_before = proc.rss_mb(), proc.cpu_s()
    profiler = Profiler(args.profile, gateway.proc.pid, log_dir / "open.txt")
    client = Client(gateway.url, token, jobs_file, args.concurrency)
    try:
        opened = await client.read()
        cpu_opened = proc.cpu_s()
        profiler.stop()
        await asyncio.sleep(1.0)  # let the last opens settle
        profiler = Profiler(args.profile, gateway.proc.pid, log_dir / "idle.txt")
        cpu0, tx0, t0 = proc.cpu_s(), await sampler.commits(), time.perf_counter()
        await asyncio.sleep(args.hold)
        held = time.perf_counter() - t0
        cpu_idle = (proc.cpu_s() - cpu0) / held
        tx_idle = (await sampler.commits() - tx0) / held
        rss_held = proc.rss_mb()
        profiler.stop()
        profiler = Profiler(args.profile, gateway.proc.pid, log_dir / "deliver.txt")

        cpu1, t1 = proc.cpu_s(), time.perf_counter()
        sent = await publish_all([shared], user_id, args.via)
        waited = await client.ask(f"wait {args.fanout} {args.timeout}")
        one_job = (time.perf_counter() - t1, proc.cpu_s() - cpu1, waited["events"])
        await asyncio.sleep(1.0)
        cpu1, t1 = proc.cpu_s(), time.perf_counter()
        sent_solo = await publish_all(solo, user_id, args.via)
        waited = await client.ask(f"wait {2 * args.fanout} {args.timeout}")
        per_job = (time.perf_counter() - t1, proc.cpu_s() - cpu1, waited["events"] - one_job[2])
        sent.update(sent_solo)
        report = await client.ask("report")
    finally:
        profiler.stop()
        client.stop()
        await sampler.stop()
    max_conns = sampler.max_connections
    await pg.close()

    streams = report["streams"]  # [job_id, first_at, count, first_id, first_event, closed]
    strays = sum(1 for s in streams if s[0] not in sent and s[2])
    dropped = sum(1 for s in streams if s[5])
    print(
        f"gateway pid {gateway.proc.pid} (open files limit {proc.nofile()}); load client pid "
        f"{client.proc.pid} (limit {opened['nofile']}); via {args.via}"
    )
    print(
        f"streams held        {opened['opened']} of {args.streams} "
        f"(failed {opened['failed']}, closed by the server later {dropped})"
    )
    print(f"open all            {opened['open_s']:.2f} s ({args.concurrency} opening at once)")
    print(
        f"gateway             RSS {rss_before:.0f} MB before, {rss_held:.0f} MB holding; "
        f"CPU {cpu_opened - cpu_before:.1f} s to open, {cpu_idle * 100:.1f} % idle holding"
    )
    print(
        f"database            {tx_idle:.1f} transactions/s while idle; max {max_conns} connections"
    )
    for label, jobs, (took, cpu, _) in (
        (f"1 event, {args.fanout} streams", {shared}, one_job),
        (f"{args.fanout} events, 1 stream each", set(solo), per_job),
    ):
        latencies = [(s[1] - sent[s[0]]) * 1000 for s in streams if s[0] in jobs and s[1]]
        if not latencies:
            print(f"{label:<30} none arrived")
            continue
        print(
            f"{label:<30} {len(latencies)} of {args.fanout} arrived in {took:.2f} s "
            f"(gateway CPU {cpu:.2f} s); latency ms min {min(latencies):.1f} "
            f"p50 {statistics.median(latencies):.1f} p95 {pct(latencies, 95):.1f} "
            f"p99 {pct(latencies, 99):.1f} max {max(latencies):.1f}"
        )
    print(f"strays              {strays} events on streams of other jobs")
    print(
        f"load client         CPU {report['cpu_open_s']:.1f} s to open, "
        f"{report['cpu_after_open_s']:.2f} s after; max RSS {report['maxrss_mb']:.0f} MB"
    )
    print("target: >= 10,000 streams held; p99 <= 100 ms for an event to each of 1,000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--fanout", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=256, help="streams opening at once")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds held idle, measured")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for events")
    parser.add_argument("--via", choices=("events", "live"), default="events")
    parser.add_argument("--profile", metavar="PY_SPY", help="py-spy binary: profile each phase")
    args = parser.parse_args()
    if args.streams < 2 * args.fanout:
        parser.error("--streams must be at least twice --fanout (two sets of receivers)")
    raise_nofile_limit()
    env = fresh_bench_env(PG)
    log_dir = Path(tempfile.mkdtemp(prefix="lectern-bench-sse-"))
    gateway = Service("gateway", free_port(), env, log_dir / "gateway.log")
    gateway.start()
    try:
        gateway.wait_ready()
        asyncio.run(run(args, gateway, log_dir))
    finally:
        gateway.stop()
    print(f"gateway log: {log_dir / 'gateway.log'}")


if __name__ == "__main__":
    main()
