"""``generate``'s conversation against a scripted backend: plan, refine, accept, progress."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lectern_cli import exit_codes
from lectern_cli.generate import Job, UsageError, run
from lectern_cli.main import build_parser
from lectern_cli.output import Output
from shared.client.errors import JobFailed
from shared.client.events import FINAL_EVENTS, Event


def ev(name: str, **payload: Any) -> Event:
    return Event(name, {"schema": f"{name}.v1", "job_id": "j", "payload": payload})


def chunk(text: str, step: str = "welcome_plan", attempt: int = 1) -> Event:
    return ev("job.chunk", step=step, text=text, attempt=attempt, index=0)


MODULES = [{"title": f"M{i}"} for i in (1, 2)]
COURSE = [
    ev(
        "course.plan_finalized",
        title="Data analysis",
        modules=MODULES,
        estimate={"calls": 6, "cost_usd": 0.0},
    ),
    ev("lesson.written", order=1, title="M1"),
    ev("course.progress", done=1, total=4, lessons_done=1, assessments_done=0),
    ev("lesson.written", order=2, title="M2"),
    ev("course.progress", done=2, total=4, lessons_done=2, assessments_done=0),
    ev("course.progress", done=3, total=4, lessons_done=2, assessments_done=1),
    ev("course.progress", done=4, total=4, lessons_done=2, assessments_done=2),
    ev(
        "course.ready",
        course_id="c-1",
        title="Data analysis",
        modules=[{"lesson_id": "l1"}, {"lesson_id": "l2"}],
    ),
]


class Scripted:
    """A backend whose jobs produce the given events; records what was asked."""

    where = "http://gw"

    def __init__(self, scripts: dict[str, list[Event]]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, Any]] = []

    def _job(self, kind: str) -> Job:
        return Job(f"job-{len(self.calls)}", "c-1", FINAL_EVENTS[kind], kind)

    async def start(self, profile: dict[str, Any], auto: bool) -> Job:
        self.calls.append(("start", (profile["topic"], auto)))
        return self._job("plan_course_auto" if auto else "plan_course")

    async def refine(self, course_id: str, text: str) -> Job:
        self.calls.append(("refine", text))
        return self._job("refine_plan")

    async def finalize(self, course_id: str) -> Job:
        self.calls.append(("finalize", course_id))
        return self._job("finalize_course")

    async def events(self, job: Job) -> AsyncIterator[Event]:
        for event in self.scripts[job.ref]:
            yield event

    def course_url(self, course_id: str) -> str | None:
        return f"http://gw/courses/{course_id}"


def args_for(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["generate", "Data analysis", *extra])


PLAN = [chunk("## Plan\n"), chunk("1. Basics\n"), ev("course.plan_proposed", plan_markdown="x")]


async def test_refine_then_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Scripted(
        {
            "plan_course": PLAN,
            "refine_plan": [
                chunk("## Plan v2\n", step="refine_plan"),
                chunk("## Plan v2, again\n", step="refine_plan", attempt=2),
                ev("course.plan_proposed", plan_markdown="v2"),
            ],
            "finalize_course": COURSE,
        }
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("r\nmore practice\nmaybe\na\n"))
    stdout = io.StringIO()
    code = await run(backend, args_for(), Output(False, stdout, io.StringIO()))
    assert code == exit_codes.OK
    assert backend.calls == [
        ("start", ("Data analysis", False)),
        ("refine", "more practice"),
        ("finalize", "c-1"),
    ]
    text = stdout.getvalue()
    assert "## Plan\n1. Basics\n" in text and "## Plan v2\n" in text
    assert "[the model started the plan over]" in text  # attempt 2 replaced attempt 1
    assert "Please answer a, r or q." in text
    assert "lesson 1 written: M1" in text
    progress = [line for line in text.splitlines() if line.startswith("progress ")]
    assert progress[-1] == "progress 4/4 steps  lessons 2/2  assessments 2/2"
    assert len(progress) == 4
    assert "Course ready: \u201cData analysis\u201d (2 lessons)" in text
    assert "http://gw/courses/c-1" in text
    assert "lectern export c-1 --format html -o course.html" in text


async def test_auto_runs_one_job_and_json_is_the_summary() -> None:
    backend = Scripted({"plan_course_auto": [*PLAN, *COURSE]})
    stdout, stderr = io.StringIO(), io.StringIO()
    code = await run(backend, args_for("--auto", "--json"), Output(True, stdout, stderr))
    assert code == exit_codes.OK
    assert backend.calls == [("start", ("Data analysis", True))]
    summary = json.loads(stdout.getvalue())
    assert summary["status"] == "ready" and summary["course_id"] == "c-1"
    assert summary["url"] == "http://gw/courses/c-1" and summary["jobs"] == ["job-1"]
    assert len(summary["modules"]) == 2
    assert "progress 4/4" in stderr.getvalue()


async def test_quit_keeps_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    stdout = io.StringIO()
    backend = Scripted({"plan_course": PLAN})
    code = await run(backend, args_for("--json"), Output(True, stdout, io.StringIO()))
    assert code == exit_codes.OK
    assert json.loads(stdout.getvalue())["status"] == "planning"


async def test_no_answer_on_stdin_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(UsageError, match="--auto"):
        await run(Scripted({"plan_course": PLAN}), args_for(), Output(False, io.StringIO()))


async def test_a_failed_job_raises_with_its_reason() -> None:
    failed = ev("job.failed", reason="lesson 2 could not be written", retryable=False)
    backend = Scripted({"plan_course_auto": [*PLAN, COURSE[0], COURSE[1], failed]})
    with pytest.raises(JobFailed) as exc:
        await run(backend, args_for("--auto"), Output(False, io.StringIO()))
    assert exc.value.reason == "lesson 2 could not be written"
    assert exit_codes.for_error(exc.value) == exit_codes.FAILED
