"""Chaos clients: each creates one autopilot course over HTTP and follows its SSE stream to
the final event, recording everything, across gateway kills and broker or database
restarts (retries on 5xx and dropped connections, resume with ``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

FINAL_EVENTS = frozenset({"course.ready", "job.failed"})


@dataclass
class Received:
    """One SSE event as the client got it."""

    id: str | None
    event: str
    data: dict[str, Any]
    at: float  # wall clock


@dataclass
class HttpTally:
    """What the gateways answered, over every client."""

    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0

    @property
    def server_errors(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if s >= 500}


@dataclass
class CourseRun:
    """One client's course: what it asked, what it was told, what it saw."""

    index: int
    topic: str = ""
    course_id: str | None = None
    job_id: str | None = None
    accepted_at: float | None = None
    events: list[Received] = field(default_factory=list)
    final: str | None = None
    finished_at: float | None = None
    reconnects: int = 0
    unacknowledged_topics: list[str] = field(default_factory=list)  # 5xx/timeouts on create
    errors: list[str] = field(default_factory=list)


class Gateways:
    """Round-robin over the gateway replicas; a failed call moves to the next one."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self._next = 0

    def pick(self) -> str:
        url = self.urls[self._next % len(self.urls)]
        self._next += 1
        return url


def profile(topic: str) -> dict[str, Any]:
    return {
        "topic": topic,
        "level": "beginner",
        "duration_hours": 4,
        "expectations": "write small programs",
        "language": "en",
        "auto_finalize": True,
    }


async def _request(
    client: httpx.AsyncClient,
    gateways: Gateways,
    tally: HttpTally,
    method: str,
    path: str,
    deadline: float,
    *,
    expect: int,
    on_unknown: Any = None,
    body: Any = None,
    **kwargs: Any,
) -> httpx.Response | None:
    """Send until the gateway answers ``expect``; every other answer is tallied and retried.

    ``on_unknown()`` is called when the outcome of an attempt is unknown (5xx or a broken
    connection: the request may have taken effect), before the next attempt; ``body()``
    gives each attempt's JSON body.
    """
    while time.monotonic() < deadline:
        if body is not None:
            kwargs["json"] = body()
        try:
            resp = await client.request(method, gateways.pick() + path, **kwargs)
        except httpx.HTTPError:
            tally.connection_errors += 1
            if on_unknown is not None:
                on_unknown()
            await asyncio.sleep(0.5)
            continue
        tally.statuses[resp.status_code] += 1
        if resp.status_code == expect:
            return resp
        if resp.status_code >= 500 or resp.status_code == 429:
            if on_unknown is not None and resp.status_code >= 500:
                on_unknown()
            await asyncio.sleep(0.5)
            continue
        raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    return None


async def run_course(
    index: int, run_id: str, gateways: Gateways, tally: HttpTally, deadline: float
) -> CourseRun:
    """Create course ``index`` (autopilot) and follow it to its final event or the deadline."""
    run = CourseRun(index)
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, read=30.0)) as client:
        guest = await _request(
            client, gateways, tally, "POST", "/v1/auth/guest", deadline, expect=201
        )
        if guest is None:
            run.errors.append("no guest token before the deadline")
            return run
        headers = {"Authorization": f"Bearer {guest.json()['access_token']}"}
        attempt = 0

        # every attempt has its own topic: a create whose answer was lost may still have
        # started a course, and the LLM log must tell the two apart
        def next_topic() -> str:
            nonlocal attempt
            attempt += 1
            return f"Chaos {run_id} c{index:03d} a{attempt} python"

        run.topic = next_topic()

        def unknown() -> None:
            run.unacknowledged_topics.append(run.topic)
            run.topic = next_topic()

        created = await _request(
            client,
            gateways,
            tally,
            "POST",
            "/v1/courses",
            deadline,
            expect=202,
            on_unknown=unknown,
            body=lambda: profile(run.topic),
            headers=headers,
        )
        if created is None:
            run.errors.append("course not accepted before the deadline")
            return run
        body = created.json()
        run.course_id, run.job_id = body["course_id"], body["job_id"]
        run.accepted_at = time.time()
        await follow(client, gateways, tally, run, body["events_url"], headers, deadline)
    return run


async def follow(
    client: httpx.AsyncClient,
    gateways: Gateways,
    tally: HttpTally,
    run: CourseRun,
    events_url: str,
    headers: dict[str, str],
    deadline: float,
) -> None:
    """Read the job's SSE stream, resuming after the last id, until a final event."""
    last_id: str | None = None
    while run.final is None and time.monotonic() < deadline:
        sent = dict(headers, Accept="text/event-stream")
        if last_id is not None:
            sent["Last-Event-ID"] = last_id
        try:
            async with client.stream("GET", gateways.pick() + events_url, headers=sent) as resp:
                tally.statuses[resp.status_code] += 1
                if resp.status_code != 200:
                    if resp.status_code < 500:
                        run.errors.append(f"events: {resp.status_code}")
                        return
                    raise httpx.TransportError(f"{resp.status_code}")
                async for event in sse(resp):
                    run.events.append(event)
                    if event.id is not None:
                        last_id = event.id
                    if event.event in FINAL_EVENTS:
                        run.final = event.event
                        run.finished_at = time.time()
                        return
        except httpx.HTTPError:
            tally.connection_errors += 1
        run.reconnects += 1
        await asyncio.sleep(0.3)


async def sse(resp: httpx.Response) -> Any:
    """The events of an SSE response as :class:`Received`."""
    fields: dict[str, str] = {}
    async for line in resp.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Received(
                    fields.get("id"),
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                    time.time(),
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = fields.get(name, "") + ("\n" if name in fields else "") + value
