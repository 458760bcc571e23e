"""One client request is one trace, across every service (exported over OTLP)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.support.client import create_course, guest_token
from tests.support.otlp import OtlpReceiver, Span
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e

SERVICES = {"gateway", "planner", "content", "assessment", "prompts"}
SERVER = 2  # SpanKind.SERVER in OTLP


async def test_a_course_from_the_http_call_to_ready_is_one_trace(
    cluster: Cluster, otlp: OtlpReceiver
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        accepted = await create_course(client, token, duration_hours=4, auto_finalize=True)
        events = await read_events(
            client, accepted["events_url"], token, until={"course.ready", "job.failed"}
        )
    assert events[-1].event == "course.ready", events[-1].data
    lessons = sum(1 for e in events if e.event == "lesson.written")

    def root() -> Span | None:
        """This request's server span: in the trace of an LLM call made for its job."""
        ours = next(
            (s for s in otlp.spans if s.attributes.get("lectern.job_id") == accepted["job_id"]),
            None,
        )
        if ours is None:
            return None
        return next(
            (
                s
                for s in otlp.trace(ours.trace_id)
                if s.kind == SERVER
                and s.attributes.get("http.route") == "/v1/courses"
                and s.attributes.get("http.request.method") == "POST"
                and s.attributes.get("http.response.status_code") == 202
            ),
            None,
        )

    def roots(spans: list[Span]) -> list[Span]:
        ids = {s.span_id for s in spans}
        return [s for s in spans if not s.parent_id or s.parent_id not in ids]

    def complete(spans: list[Span]) -> bool:
        services = {s.service.removeprefix("lectern-") for s in spans}
        calls = sum(1 for s in spans if s.name.startswith("chat "))
        # every parent exported too: one root left
        return services >= SERVICES and calls >= 2 + 3 * lessons and len(roots(spans)) == 1

    spans: list[Span] = []
    for _ in range(300):  # spans arrive in batches, every 0.2 s per process
        first = root()
        spans = otlp.trace(first.trace_id) if first else []
        if complete(spans):
            break
        await asyncio.sleep(0.1)
    first = root()
    assert first is not None, "the gateway exported no span for POST /v1/courses"
    services = {s.service.removeprefix("lectern-") for s in spans}
    assert services >= SERVICES, services
    # every span of the trace hangs off the request's span: no orphan roots
    orphans = roots(spans)
    assert [r.span_id for r in orphans] == [first.span_id], [(r.service, r.name) for r in orphans]

    # database work is in the trace too, in every service that touches its schema
    db = {s.service.removeprefix("lectern-") for s in spans if s.attributes.get("db.system.name")}
    assert db >= {"gateway", "planner", "content", "assessment"}, db
    assert all(
        s.attributes["db.query.text"] and s.kind == 3  # CLIENT
        for s in spans
        if s.attributes.get("db.system.name")
    )

    llm = [s for s in spans if s.name.startswith("chat ")]
    tasks = Counter(s.attributes.get("lectern.task") for s in llm)
    assert tasks["welcome_plan"] == tasks["finalise_modules"] == 1, tasks
    assert tasks["write_lesson"] == tasks["quiz"] == tasks["coding_exercise"] == lessons, tasks
    for span in llm:
        attrs = span.attributes
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] and attrs["gen_ai.response.model"]
        assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
        assert attrs["lectern.prompt.name"] and attrs["lectern.prompt.version"]
        assert attrs["lectern.job_id"] == accepted["job_id"]
