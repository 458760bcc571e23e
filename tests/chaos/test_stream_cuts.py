"""Streams cut mid-way: the client is told (a higher ``attempt`` on the chunks) to discard
the partial text, and what it holds in the end is the stored text, once, in full."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import asyncpg
import pytest

from tests.chaos import checks
from tests.chaos.clients import Gateways, HttpTally, run_course
from tests.chaos.harness import Stage

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]
PLAN_TASKS = {"welcome_plan", "grounded_welcome_plan"}  # a course with sources: grounded
LESSON_TASKS = {"write_lesson", "write_grounded_lesson"}


def test_cut_streams_are_discarded_and_the_text_is_whole(stage_of: Callable[..., Stage]) -> None:
    # a second per answer: each cut attempt has streamed text before it is cut
    stage = stage_of(llm_args=["--ttft", "0.05", "--latency", "1.0"])
    # every plan and lesson stream: the 1st drops its connection mid-way, the 2nd ends
    # cleanly half-way without a finish reason, the 3rd is whole
    cut_first = dict.fromkeys(PLAN_TASKS | LESSON_TASKS, 2)
    stage.llm.set_faults(cut_first=cut_first, cut_mode="mixed")
    tally = HttpTally()
    run = asyncio.run(
        run_course(0, "cuts", Gateways(stage.gateways), tally, time.monotonic() + 150)
    )
    findings = checks.Findings()
    checks.judge_clients([run], tally, findings)
    # judge_run rebuilds each step's text as the web app does (a higher attempt starts
    # over) and compares it with the stored plan and lessons the events carry
    assert run.final == "course.ready", findings.table()
    assert findings.headline() == dict.fromkeys(findings.headline(), 0), findings.table()

    attempts: dict[str, list[int]] = defaultdict(list)
    for event in run.events:
        if event.event == "job.chunk":
            step, attempt = event.data["payload"]["step"], event.data["payload"]["attempt"]
            if not attempts[step] or attempts[step][-1] != attempt:
                attempts[step].append(attempt)
    lessons = [s for s in attempts if s.startswith("lesson:")]
    assert len(lessons) >= 3, attempts
    for step in ["welcome_plan", *lessons]:
        # text of the two cut attempts reached the client, then it was told to drop it
        assert attempts[step] == [1, 2, 3], (step, attempts[step])

    records = stage.llm.records()
    stored = asyncio.run(stored_lessons(stage, str(run.course_id)))
    written = {e.data["payload"]["order"]: e.data["payload"] for e in run.events
               if e.event == "lesson.written"}  # fmt: skip
    assert sorted(written) == sorted(stored) and len(stored) >= 3
    for order, markdown in stored.items():
        assert written[order]["markdown"] == markdown  # what the client held was checked
        calls = [r for r in records if r["task"] in LESSON_TASKS and r["order"] == order]
        assert [r["outcome"] for r in calls] == ["cut", "cut_clean", "ok"], calls
        # the stored lesson is exactly the one complete answer: not the half that ended
        # cleanly, not the cut text followed by the retry
        assert len(markdown) == calls[-1]["chars"], order
        headings = [line for line in markdown.splitlines() if line.startswith("#")]
        assert len(headings) == len(set(headings)), f"lesson {order} repeats itself"


async def stored_lessons(stage: Stage, course_id: str) -> dict[int, str]:
    """The course's stored lessons (version 1) by position, from the database."""
    conn = await asyncpg.connect(stage.postgres.url("lectern").replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT position, markdown FROM content.lessons WHERE course_id = $1 AND version = 1",
            course_id,
        )
    finally:
        await conn.close()
    return {r["position"]: r["markdown"] for r in rows}
