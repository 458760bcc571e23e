"""A lean SSE load client: thousands of job streams from one process (bench/sse.py).

Raw asyncio protocols on uvloop, one socket per stream: an HTTP/1.1 GET with the
bearer token, the status line and headers checked, then the chunked body split into
lines and ``id:``/``event:``/``data:`` fields gathered until the blank line that ends
an event. Per stream it keeps the wall-clock time (``time.time()``, comparable across
processes on one machine) of the first event received and how many arrived; pings
(comment lines) are not events. Nothing is JSON-decoded while streaming.

Driven over stdin/stdout, one JSON object per line:

- on start it opens every stream, then prints ``{"phase": "open", ...}``;
- ``wait N T`` answers ``{"phase": "wait", "events": n}`` once N events have
  arrived in all, or after T seconds;
- ``report`` answers with every stream's figures (``[job_id, first_at, count,
  first_id, first_event, closed]``; a job listed twice has two streams) and the
  client's own CPU time, then closes the streams and exits.

    python -m tests.support.sse_load --url http://127.0.0.1:8000 --token T --jobs FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


class Totals:
    """What every stream adds to: events received, and who waits for a count."""

    def __init__(self) -> None:
        self.events = 0
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []

    def add_event(self) -> None:
        self.events += 1
        if self.waiters:
            for n, fut in self.waiters:
                if self.events >= n and not fut.done():
                    fut.set_result(None)


class SseStream(asyncio.Protocol):
    """One ``GET /v1/jobs/{job_id}/events``: its status, then its events."""

    def __init__(self, job_id: str, request: bytes, totals: Totals) -> None:
        self.job_id = job_id
        self.request = request
        self.totals = totals
        self.opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_headers = True
        self.status = 0
        self.fields = 0  # id/event/data lines of the event being read
        self.first_at: float | None = None
        self.first_id = ""
        self.first_event = ""
        self.count = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for raw in lines:
            line = raw.rstrip(b"\r")
            if self.in_headers:
                if not self.status:
                    parts = line.split(b" ", 2)
                    self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
                elif not line:
                    self.in_headers = False
                    if not self.opened.done():
                        self.opened.set_result(self.status)
                continue
            if not line:  # end of an event (or of a chunk: then no fields were seen)
                if self.fields:
                    self.fields = 0
                    self.count += 1
                    if self.first_at is None:
                        self.first_at = now
                    self.totals.add_event()
                continue
            if line.startswith(b"id:"):
                self.fields += 1
                if self.first_at is None:
                    self.first_id = line[3:].strip().decode()
            elif line.startswith(b"event:"):
                self.fields += 1
                if self.first_at is None:
                    self.first_event = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                self.fields += 1
            # anything else: a chunk-size line of the chunked encoding, or a ": ping"

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_result(self.status or -1)


async def open_all(
    host: str, port: int, token: str, job_ids: list[str], concurrency: int, totals: Totals
) -> tuple[list[SseStream], int, float]:
    loop = asyncio.get_running_loop()
    streams: list[SseStream] = []
    failed = 0
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(job_id: str) -> None:
        nonlocal failed
        request = (
            f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        stream = SseStream(job_id, request, totals)
        async with gate:
            for attempt in range(5):
                try:
                    await loop.create_connection(lambda: stream, host, port)
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                failed += 1
                return
            status = await stream.opened
        if status != 200:
            failed += 1
            print(f"stream {job_id}: status {status}", file=sys.stderr)
        streams.append(stream)

    await asyncio.gather(*(one(job_id) for job_id in job_ids))
    return streams, failed, time.perf_counter() - started


async def main(args: argparse.Namespace, job_ids: list[str]) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    totals = Totals()
    cpu0 = cpu_seconds()
    streams, failed, open_s = await open_all(
        host, port, args.token, job_ids, args.concurrency, totals
    )
    cpu_open = cpu_seconds() - cpu0

    def emit(obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    emit(
        {
            "phase": "open",
            "opened": sum(1 for s in streams if s.status == 200 and not s.closed),
            "failed": failed,
            "open_s": open_s,
            "cpu_open_s": cpu_open,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cpu1 = cpu_seconds()
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "report":
            break
        if line[0] == "wait":
            wanted, timeout = int(line[1]), float(line[2])
            fut: asyncio.Future[None] = loop.create_future()
            totals.waiters.append((wanted, fut))
            if totals.events < wanted:
                try:
                    await asyncio.wait_for(fut, timeout)
                except TimeoutError:
                    pass
            totals.waiters.clear()
            emit({"phase": "wait", "events": totals.events})
    emit(
        {
            "phase": "report",
            "streams": [
                [s.job_id, s.first_at, s.count, s.first_id, s.first_event, s.closed]
                for s in streams
            ],
            "cpu_open_s": cpu_open,
            "cpu_after_open_s": cpu_seconds() - cpu1,
            "cpu_total_s": cpu_seconds(),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    for s in streams:
        if s.transport is not None:
            s.transport.abort()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--jobs", required=True, help="a file with one job id a line")
    parser.add_argument("--concurrency", type=int, default=256, help="streams opening at once")
    args = parser.parse_args()
    raise_nofile_limit()
    jobs = [line.strip() for line in Path(args.jobs).read_text().splitlines() if line.strip()]
    import uvloop

    uvloop.run(main(args, jobs))
