"""A small SSE client for tests: reads events until a final one."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: dict[str, Any]
    received: float = field(default_factory=time.time, compare=False)  # wall clock, when read


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    *,
    last_event_id: str | None = None,
    until: set[str] | frozenset[str] = frozenset({"course.plan_proposed", "job.failed"}),
    max_events: int | None = None,
    timeout: float = 60.0,
) -> list[SseEvent]:
    """GET ``url`` as an event stream; stop at an event in ``until`` or after ``max_events``."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    out: list[SseEvent] = []
    async with client.stream("GET", url, headers=headers, timeout=timeout) as resp:
        resp.raise_for_status()
        fields: dict[str, str] = {}
        async for line in resp.aiter_lines():
            if line == "":
                if "data" in fields:
                    ev = SseEvent(
                        fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                    )
                    out.append(ev)
                    if ev.event in until or (max_events and len(out) >= max_events):
                        return out
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields.get(name, "") + ("\n" if name in fields else "") + value
    return out
