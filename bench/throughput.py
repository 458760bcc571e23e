"""Benchmark: plan requests per second, end to end, and the raw broker rate beside it.

Every service runs as a real process on a fresh database and virtual host, with the
built-in offline model at 0 ms per call (an instant model). A load client in its own
process (uvloop, raw HTTP/1.1 on asyncio streams, no HTTP library per request) keeps
``--concurrency`` plans in flight for ``--seconds``: each is ``POST /v1/courses`` (HTTP
in), then the job's SSE stream read until ``course.plan_proposed`` (the final event
out). Printed: plans completed per second over the run, latency p50/p90/p99/max, the
load client's own CPU, each service's CPU over the run, RabbitMQ's and PostgreSQL's
(when they run on this machine), each one's CPU per plan, and the ceiling the broker
and the database set on their own: the plans per second the machine's cores allow if
Lectern's processes took no CPU at all.

Beside it, the raw broker rate on the same machine: one connection publishes persistent
messages with confirms (a window of 256 unconfirmed) to a durable queue while another
consumes them with manual acks (prefetch 256), for ``--broker-seconds``, first on a
classic queue (as earlier sessions measured), then on a quorum queue (as Lectern's
durable queues are), each with RabbitMQ's CPU a message. A plan is six
broker publishes (the command, three ``job.chunk``, ``llm.call_completed``,
``course.plan_proposed``) and seven deliveries (the usage event goes to the prompt
registry too), counted with RabbitMQ's management API, and about 26 round trips to
PostgreSQL (its statement log), so the ratio of the two rates is what Lectern's own
plumbing costs.

Target: >= 250 plans/s sustained for a minute.

    .venv/bin/python bench/throughput.py --seconds 60 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FINAL = {"course.plan_proposed", "job.failed"}
PROFILE = {"topic": "Throughput", "level": "beginner", "duration_hours": 4, "language": "en"}


# -- the load client (its own process) -----------------------------------------------
class Http:
    """One HTTP/1.1 connection: a request and its whole (or streamed) response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        self.writer.close()

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)

    async def head(self) -> tuple[int, dict[str, str]]:
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        return b"".join([part async for part in self.chunks()])

    async def chunks(self):  # type: ignore[no-untyped-def]
        while True:
            size = int((await self.reader.readline()).strip() or b"0", 16)
            if size == 0:
                await self.reader.readline()
                return
            data = await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            yield data

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        await self.send(method, path, headers, body)
        status, head = await self.head()
        return status, await self.body(head)


async def one_plan(host: str, port: int, token: str) -> str:
    """POST a course and read its stream to the final event; returns the final event."""
    http = Http(host, port)
    await http.open()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        status, body = await http.request(
            "POST",
            "/v1/courses",
            {**auth, "Content-Type": "application/json"},
            json.dumps(PROFILE).encode(),
        )
        if status != 202:
            raise RuntimeError(f"POST /v1/courses: {status} {body[:200]!r}")
        events_url = json.loads(body)["events_url"]
        await http.send("GET", events_url, {**auth, "Accept": "text/event-stream"}, b"")
        status, _ = await http.head()
        if status != 200:
            raise RuntimeError(f"GET {events_url}: {status}")
        buffer = b""
        async for data in http.chunks():
            buffer += data.replace(b"\r\n", b"\n")  # sse-starlette ends lines with CRLF
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"event:"):
                        name = line[6:].strip().decode()
                        if name in FINAL:
                            return name
        raise RuntimeError("stream ended without a final event")
    finally:
        http.close()


async def guest(host: str, port: int) -> str:
    http = Http(host, port)
    await http.open()
    try:
        status, body = await http.request("POST", "/v1/auth/guest", {})
        if status != 201:
            raise RuntimeError(f"POST /v1/auth/guest: {status} {body[:200]!r}")
        return str(json.loads(body)["access_token"])
    finally:
        http.close()


async def load(gateways: list[str], concurrency: int, seconds: float, warmup: float) -> dict:
    targets = [(u.hostname or "127.0.0.1", u.port or 80) for u in map(urlsplit, gateways)]
    tokens = [await guest(*targets[i % len(targets)]) for i in range(concurrency)]
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    done_in_window = 0

    async def worker(i: int) -> None:
        nonlocal done_in_window
        host, port = targets[i % len(targets)]
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                final = await one_plan(host, port, tokens[i])
            except Exception as exc:  # counted, and the worker goes on
                failures.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.1)
                continue
            t1 = time.perf_counter()
            if final != "course.plan_proposed":
                failures.append(final)
            elif t0 >= measure_from and t1 <= stop_at:
                latencies.append(t1 - t0)
                done_in_window += 1

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "completed": done_in_window,
        "seconds": seconds,
        "latencies": latencies,
        "failures": failures[:20],
        "failed": len(failures),
        "client_cpu_s": cpu,
        "client_wall_s": time.perf_counter() - started,
    }


def client_main(args: argparse.Namespace) -> None:
    import uvloop

    result = uvloop.run(load(args.gateway, args.concurrency, args.seconds, args.warmup))
    print(json.dumps(result))


# -- the raw broker rate --------------------------------------------------------------
async def broker_rate(
    amqp_url: str, seconds: float, queue_type: str = "classic", window: int = 256
) -> dict[str, float]:
    """Persistent publishes with confirms (``window`` unconfirmed) into a durable queue of
    ``queue_type`` (Lectern's are quorum queues), consumed with manual acks on another
    connection; messages per second end to end."""
    body = b"x" * 600  # about a plan command's size
    pub_conn = await aio_pika.connect(amqp_url)
    sub_conn = await aio_pika.connect(amqp_url)
    async with pub_conn, sub_conn:
        pub = await pub_conn.channel(publisher_confirms=True)
        sub = await sub_conn.channel()
        await sub.set_qos(prefetch_count=window)
        queue = await sub.declare_queue(
            f"bench.broker-rate.{queue_type}",
            durable=True,
            arguments={"x-queue-type": queue_type},
        )
        await queue.purge()
        consumed = 0
        published: int | None = None  # known once publishing stops
        all_in = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal consumed
            await message.ack()
            consumed += 1
            if published is not None and consumed >= published:
                all_in.set()

        tag = await queue.consume(on_message)
        sent = 0
        started = time.perf_counter()
        stop_at = started + seconds
        pending: set[asyncio.Future] = set()
        while time.perf_counter() < stop_at:
            while len(pending) < window:
                pending.add(
                    asyncio.ensure_future(
                        pub.default_exchange.publish(
                            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                            routing_key=queue.name,
                        )
                    )
                )
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            sent += len(done)
        await asyncio.gather(*pending)
        published = sent + len(pending)
        publish_s = time.perf_counter() - started
        if consumed < published:
            await asyncio.wait_for(all_in.wait(), 60)
        both_s = time.perf_counter() - started
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    return {
        "published": published,
        "publish_per_s": published / publish_s,
        "end_to_end_per_s": consumed / both_s,
    }


# -- the driver -----------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--gateways", type=int, default=1, help="gateway processes")
    parser.add_argument("--planners", type=int, default=1, help="planner processes")
    parser.add_argument("--broker-seconds", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, help="run each service under cProfile, into DIR")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gateway", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return

    from tests.support.infra import fresh_bench_env
    from tests.support.processes import Service, free_port
    from tests.support.procfs import cpu_between, cpu_seconds, infra_cpu

    env = fresh_bench_env(
        os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432"),
        LECTERN_OFFLINE_LATENCY_MS="0",
        LECTERN_BUDGET_GUEST_TOKENS="0",
        **{
            f"LECTERN_RATE_LIMIT_{name}": "0/minute"
            for name in ("GENERATE_USER", "GENERATE_IP", "GUEST_IP", "AUTH_IP")
        },
    )
    log_dir = Path(tempfile.mkdtemp(prefix="lectern-bench-throughput-"))
    counts = {"gateway": args.gateways, "planner": args.planners, "prompts": 1}
    services = [
        Service(name, free_port(), dict(env), log_dir / f"{name}-{i}.log")
        for name, n in counts.items()
        for i in range(n)
    ]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(services):
            s.env["LECTERN_PROFILE"] = str(args.profile / f"{s.name}-{i}.prof")
    try:
        for s in services:
            s.start()
        for s in services:
            s.wait_ready()
        gateways = [s.url for s in services if s.name == "gateway"]
        print(
            f"{len(gateways)} gateway, {args.planners} planner; offline model at 0 ms; "
            f"{args.concurrency} plans in flight for {args.seconds:.0f} s "
            f"(after {args.warmup:.0f} s warm-up); {os.cpu_count()} cores"
        )
        cpu0 = {id(s): cpu_seconds(s.proc.pid) for s in services}
        infra0 = infra_cpu()
        client = subprocess.run(
            [sys.executable, __file__, "--client", "--concurrency", str(args.concurrency),
             "--seconds", str(args.seconds), "--warmup", str(args.warmup),
             *[a for g in gateways for a in ("--gateway", g)]],
            capture_output=True, text=True, env={**os.environ, **env}, check=False,
        )  # fmt: skip
        if client.returncode != 0:
            raise SystemExit(f"load client failed:\n{client.stderr[-3000:]}")
        r = json.loads(client.stdout.strip().splitlines()[-1])
        busy = {
            f"{s.name}-{i}": cpu_seconds(s.proc.pid) - cpu0[id(s)] for i, s in enumerate(services)
        }
        infra = cpu_between(infra0, infra_cpu())
        lat = r["latencies"]
        rate = r["completed"] / r["seconds"]
        print(f"plans completed: {r['completed']} in {r['seconds']:.0f} s = {rate:.1f}/s "
              f"(target >= 250/s); failed {r['failed']}")  # fmt: skip
        if lat:
            print(
                f"latency (POST to course.plan_proposed): p50 {statistics.median(lat) * 1000:.1f}"
                f" ms, p90 {pct(lat, 0.9) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms, "
                f"max {max(lat) * 1000:.1f} ms"
            )
        print(
            f"load client CPU: {r['client_cpu_s']:.1f} s over {r['client_wall_s']:.0f} s "
            f"({r['client_cpu_s'] / r['client_wall_s'] * 100:.0f}% of a core)"
        )
        wall = r["client_wall_s"]
        print("service CPU over the run: " + ", ".join(
            f"{name} {sec:.1f} s ({sec / wall * 100:.0f}%)" for name, sec in busy.items()
        ))  # fmt: skip
        print("RabbitMQ and PostgreSQL over the run: " + ", ".join(
            f"{name} {sec:.1f} s ({sec / wall * 100:.0f}%)" for name, sec in infra.items()
        ))  # fmt: skip
        if rate:
            # CPU per plan: each process's share of a second of the run over plans per
            # second (the warm-up runs as loaded as the rest)
            used = {**busy, **infra, "load client": r["client_cpu_s"]}
            ms = {name: sec / wall / rate * 1000 for name, sec in used.items()}
            floor = sum(ms[name] for name in infra)
            cores = os.cpu_count() or 1
            print("CPU per plan: " + ", ".join(f"{name} {v:.1f} ms" for name, v in ms.items())
                  + f"; all {sum(ms.values()):.1f} ms")  # fmt: skip
            if floor > 0:  # both run on this machine
                print(
                    f"ceiling: RabbitMQ and PostgreSQL alone take {floor:.1f} ms of CPU a plan, "
                    f"so {cores} cores allow at most {cores * 1000 / floor:.0f} plans/s even if "
                    f"Lectern's own processes took none"
                )
        for failure in r["failures"][:5]:
            print(f"  failure: {failure}")
    finally:
        for s in services:
            s.stop()

    for queue_type in ("classic", "quorum"):
        infra0 = infra_cpu()
        raw = asyncio.run(broker_rate(env["AMQP_URL"], args.broker_seconds, queue_type))
        beam = cpu_between(infra0, infra_cpu())["rabbitmq"]
        print(
            f"raw broker, {queue_type} queue: {raw['publish_per_s']:.0f} msg/s published with "
            f"confirms, {raw['end_to_end_per_s']:.0f} msg/s published and consumed with acks "
            f"({raw['published']} persistent messages of 600 B)"
            + (f"; RabbitMQ's CPU {beam / raw['published'] * 1e6:.0f} us a message" if beam else "")
        )
        if lat:
            print(f"  plans/s as a share of it: {rate / raw['end_to_end_per_s']:.3f}")


if __name__ == "__main__":
    main()
