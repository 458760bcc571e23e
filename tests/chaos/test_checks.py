"""The chaos run's judge, on made-up histories: each kind of wrong is counted (so a run
that reports zeros could have reported more)."""

from __future__ import annotations

import copy
from typing import Any

from tests.chaos import checks
from tests.chaos.clients import CourseRun, HttpTally, Received

JOB, COURSE = "job-1", "course-1"


def event(seq: int, name: str, payload: dict[str, Any], message_id: str = "") -> Received:
    data = {"job_id": JOB, "message_id": message_id or f"m{seq}",
            "payload": {"course_id": COURSE, **payload}}  # fmt: skip
    return Received(str(seq), name, data, 0.0)


def good_run() -> CourseRun:
    """A one-module course as the client should see it."""
    plan, lesson = "# Plan\n", "# Lesson\n\nText.\n"
    events = [
        ("job.chunk", {"step": "welcome_plan", "attempt": 1, "index": 0, "text": "# Pl"}),
        ("job.chunk", {"step": "welcome_plan", "attempt": 2, "index": 0, "text": "# Plan\n"}),
        ("course.plan_proposed", {"plan_markdown": plan}),
        ("course.plan_finalized", {"modules": [{"order": 1}]}),
        ("job.chunk", {"step": "lesson:1", "attempt": 1, "index": 0, "text": "# Lesson\n"}),
        ("job.chunk", {"step": "lesson:1", "attempt": 1, "index": 1, "text": "\nText.\n"}),
        ("lesson.written", {"order": 1, "markdown": lesson}),
        ("course.progress", {"done": 1}),
        ("assessment.ready", {"order": 1}),
        ("course.progress", {"done": 2}),
        ("course.ready", {"modules": [{"order": 1, "lesson_id": "l", "quiz_id": "q",
                                       "exercise_id": "e"}]}),
    ]  # fmt: skip
    run = CourseRun(0, topic="t", course_id=COURSE, job_id=JOB, final="course.ready")
    run.events = [event(i, name, payload) for i, (name, payload) in enumerate(events, start=1)]
    return run


def judged(run: CourseRun, tally: HttpTally | None = None) -> dict[str, int]:
    findings = checks.Findings()
    checks.judge_clients([run], tally or HttpTally(), findings)
    return findings.headline()


def test_a_good_history_counts_nothing() -> None:
    assert judged(good_run()) == {
        "lost": 0, "not accepted": 0, "duplicated": 0, "unexpected": 0, "re-billed": 0,
        "5xx other than 503": 0,
    }  # fmt: skip


def test_each_kind_of_wrong_is_counted() -> None:
    lost = good_run()
    lost.final, lost.events = None, lost.events[:-1]
    assert judged(lost)["lost"] == 1

    never = CourseRun(1, errors=["course not accepted before the deadline"])
    assert judged(never)["not accepted"] == 1

    twice = good_run()  # a redelivered lesson.written stored under another message id
    twice.events.insert(7, event(99, "lesson.written", twice.events[6].data["payload"]))
    assert judged(twice)["duplicated"] >= 1

    same_id = good_run()  # the same event handed out twice (a bad resume)
    same_id.events.insert(3, copy.deepcopy(same_id.events[2]))
    assert judged(same_id)["duplicated"] >= 1

    repeated = good_run()  # a second delivery streaming the same attempt again
    repeated.events[5] = event(6, "job.chunk", {"step": "lesson:1", "attempt": 1, "index": 0,
                                                 "text": "# Lesson\n"})  # fmt: skip
    assert judged(repeated)["unexpected"] >= 1

    early = good_run()  # course.ready before the assessment it announces
    del early.events[8]
    assert judged(early)["unexpected"] >= 1

    tally = HttpTally()
    tally.statuses.update({202: 1, 503: 4})
    assert judged(good_run(), tally)["5xx other than 503"] == 0
    tally.statuses[500] += 1
    assert judged(good_run(), tally)["5xx other than 503"] == 1

    stranger = good_run()
    stranger.events[7].data["job_id"] = "someone-else"
    assert judged(stranger)["unexpected"] >= 1


async def test_a_call_after_the_step_was_stored_is_rebilled() -> None:
    class Conn:
        async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
            if "planner.courses" in sql:
                return [{"topic": "t", "course_id": COURSE}]
            if args == ("lesson.written.v1",):
                return [{"course_id": COURSE, "ord": 1, "at": 100.0}]
            return []

    def call(at: float, outcome: str = "ok") -> dict[str, Any]:
        return {"task": "write_lesson", "topic": "t", "order": 1, "t_start": at,
                "outcome": outcome, "step": "t|write_lesson|1"}  # fmt: skip

    findings = checks.Findings()
    await checks.judge_llm(Conn(), [call(98.0, "cut"), call(99.0)], findings)  # type: ignore[arg-type]
    assert findings.rebilled == [] and findings.steps_generated_twice == 0
    await checks.judge_llm(Conn(), [call(99.0), call(100.5)], findings)  # type: ignore[arg-type]
    assert len(findings.rebilled) == 1 and findings.steps_generated_twice == 1
