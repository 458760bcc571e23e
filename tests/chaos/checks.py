"""What a chaos run is judged on, Jepsen-style: lost, duplicated and unexpected results at
the client, and LLM calls made for a step whose result was already stored (re-billed).

Every count comes with the examples behind it, so a failing run says what went wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.chaos.clients import CourseRun, HttpTally

# which stored announcement ends each LLM task's step (and whether it is per lesson)
STEP_EVENTS = {
    "welcome_plan": ("planner", "course.plan_proposed.v1"),
    "grounded_welcome_plan": ("planner", "course.plan_proposed.v1"),
    "finalise_modules": ("planner", "course.plan_finalized.v1"),
    "write_lesson": ("content", "lesson.written.v1"),
    "write_grounded_lesson": ("content", "lesson.written.v1"),
    "quiz": ("assessment", "assessment.ready.v1"),
    "coding_exercise": ("assessment", "assessment.ready.v1"),
}


@dataclass
class Findings:
    """Counts (with examples) of one run; all four headline counts must be 0."""

    courses: int = 0
    acknowledged: int = 0
    ready: int = 0
    failed: int = 0
    lost: list[str] = field(default_factory=list)
    not_accepted: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    rebilled: list[str] = field(default_factory=list)
    http_5xx: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    reconnects: int = 0
    unacknowledged: int = 0
    orphans: int = 0  # courses started by a create whose answer was lost
    llm_outcomes: dict[str, int] = field(default_factory=dict)
    llm_calls: int = 0
    steps_generated_twice: int = 0
    kills: int = 0
    duplicates_sent: int = 0
    duplicates_seen: int = 0
    exits: list[str] = field(default_factory=list)
    rabbit_restarts: int = 0
    postgres_restarts: int = 0
    detached_queues: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def headline(self) -> dict[str, int]:
        return {
            "lost": len(self.lost),
            "not accepted": len(self.not_accepted),
            "duplicated": len(self.duplicated),
            "unexpected": len(self.unexpected),
            "re-billed": len(self.rebilled),
            # a 503 says "not now, retry" (a restart, a killed replica): legitimate; a 500 is not
            "5xx other than 503": sum(n for s, n in self.http_5xx.items() if s != 503),
        }

    def table(self) -> str:
        """The figures as a small text table."""
        rows = [
            ("courses (accepted / ready / job.failed)",
             f"{self.courses} ({self.acknowledged} / {self.ready} / {self.failed})"),
            ("kill -9 (with replacement)", self.kills),
            ("messages sent twice on purpose (of those seen)",
             f"{self.duplicates_sent} (of {self.duplicates_seen})"),
            ("processes that exited by themselves (restarted)", len(self.exits)),
            ("RabbitMQ restarts / PostgreSQL restarts",
             f"{self.rabbit_restarts} / {self.postgres_restarts}"),
            ("lost", len(self.lost)),
            ("never accepted (no 202 before the deadline)", len(self.not_accepted)),
            ("duplicated at the client", len(self.duplicated)),
            ("unexpected", len(self.unexpected)),
            ("LLM calls re-billed after the step was stored", len(self.rebilled)),
            ("gateway 5xx (by status)", _fmt(self.http_5xx) or "0"),
            ("client connection errors / SSE reconnects",
             f"{self.connection_errors} / {self.reconnects}"),
            ("creates with an unknown outcome (retried) / that started a course",
             f"{self.unacknowledged} / {self.orphans}"),
            ("LLM requests (by outcome)", f"{self.llm_calls} ({_fmt(self.llm_outcomes)})"),
            ("steps answered twice before being stored", self.steps_generated_twice),
            ("durable queues without a consumer at the end", len(self.detached_queues)),
            ("duration (s)", f"{self.seconds:.0f}"),
        ]  # fmt: skip
        width = max(len(name) for name, _ in rows)
        lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
        for title, items in (
            ("lost", self.lost),
            ("not accepted", self.not_accepted),
            ("duplicated", self.duplicated),
            ("unexpected", self.unexpected),
            ("re-billed", self.rebilled),
            ("detached", self.detached_queues),
            ("exited", self.exits),
        ):
            lines += [f"  {title}: {item}" for item in items[:10]]
        return "\n".join(lines)


def _fmt(counts: dict[Any, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


# --------------------------------------------------------------------------- the client side


class StepText:
    """The text a client holds for one step, as the web app's reducer builds it."""

    def __init__(self) -> None:
        self.attempt = 0
        self.text = ""
        self.next_index = 0

    def apply(self, attempt: int, index: int, text: str) -> str | None:
        """Apply a chunk; a problem (a repeated or missing piece) as text, else None."""
        if attempt > self.attempt:  # a retry: the earlier attempt was cut, start over
            self.attempt, self.text, self.next_index = attempt, "", 0
        elif attempt < self.attempt:
            return None  # a late piece of an abandoned attempt
        problem = None
        if index < self.next_index:
            problem = f"chunk {index} of attempt {attempt} again (expected {self.next_index})"
        elif index > self.next_index:
            problem = f"chunks {self.next_index}..{index - 1} of attempt {attempt} missing"
        self.text += text
        self.next_index = index + 1
        return problem


def judge_run(run: CourseRun, findings: Findings) -> None:
    """Check one acknowledged course's events; add what is wrong to ``findings``."""
    name = f"course {run.index} ({run.course_id})"
    if run.final is None:
        findings.lost.append(f"{name}: no final event; last {_last(run)}")
    elif run.final == "course.ready":
        findings.ready += 1
    else:
        findings.failed += 1
    ids = [e.id for e in run.events]
    seen_ids = Counter(ids)
    message_ids = Counter(str(e.data.get("message_id")) for e in run.events)
    for dup in [i for i, n in seen_ids.items() if n > 1][:3]:
        findings.duplicated.append(f"{name}: event id {dup} received {seen_ids[dup]} times")
    for dup in [m for m, n in message_ids.items() if n > 1][:3]:
        findings.duplicated.append(f"{name}: message {dup} received {message_ids[dup]} times")
    numbers = [int(i) for i in ids if i is not None and i.isdigit()]
    if len(numbers) != len(ids) or sorted(set(numbers)) != list(range(1, len(set(numbers)) + 1)):
        findings.unexpected.append(f"{name}: event ids are not 1..n without gaps: {ids[:40]}")
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    steps: dict[str, StepText] = defaultdict(StepText)
    for event in run.events:
        data, payload = event.data, event.data.get("payload") or {}
        by_type[event.event].append(payload)
        if data.get("job_id") != run.job_id:
            findings.unexpected.append(f"{name}: {event.event} of job {data.get('job_id')}")
        if payload.get("course_id") not in (None, run.course_id):
            findings.unexpected.append(f"{name}: {event.event} of course {payload['course_id']}")
        if event.event == "job.chunk":
            problem = steps[payload["step"]].apply(
                int(payload.get("attempt", 1)), int(payload["index"]), payload["text"]
            )
            if problem:
                findings.unexpected.append(f"{name}: {payload['step']}: {problem}")
        elif event.event == "lesson.written":
            _compare(findings, name, steps.pop(f"lesson:{payload['order']}", None),
                     payload["markdown"], f"lesson {payload['order']}")  # fmt: skip
        elif event.event == "course.plan_proposed":
            _compare(findings, name, steps.pop("welcome_plan", None),
                     payload["plan_markdown"], "welcome plan")  # fmt: skip
    for kind in ("course.plan_proposed", "course.plan_finalized", "course.ready"):
        if len(by_type[kind]) > 1:
            findings.duplicated.append(f"{name}: {kind} received {len(by_type[kind])} times")
    for kind in ("lesson.written", "assessment.ready"):
        orders = Counter(p["order"] for p in by_type[kind])
        for order, n in orders.items():
            if n > 1:
                findings.duplicated.append(f"{name}: {kind} for lesson {order} {n} times")
    if run.final == "course.ready":
        _check_ready(findings, name, by_type)


def _check_ready(findings: Findings, name: str, by_type: dict[str, list[dict[str, Any]]]) -> None:
    """A course.ready must come after everything it announces, and announce all of it."""
    finalized = by_type["course.plan_finalized"]
    if not finalized:
        findings.unexpected.append(f"{name}: course.ready without course.plan_finalized")
        return
    total = len(finalized[0]["modules"])
    ready = by_type["course.ready"][-1]
    expected = set(range(1, total + 1))
    for kind in ("lesson.written", "assessment.ready"):
        got = {p["order"] for p in by_type[kind]}
        if got != expected:
            findings.unexpected.append(f"{name}: course.ready but {kind} for {sorted(got)}")
    modules = ready.get("modules") or []
    if sorted(m.get("order") for m in modules) != sorted(expected):
        findings.unexpected.append(f"{name}: course.ready lists {len(modules)} of {total} modules")
    for m in modules:
        if not m.get("lesson_id") or not m.get("quiz_id") or not m.get("exercise_id"):
            findings.unexpected.append(f"{name}: course.ready module {m.get('order')} lacks ids")
    done = sorted(p["done"] for p in by_type["course.progress"])
    if done != list(range(1, 2 * total + 1)):
        findings.unexpected.append(f"{name}: course.progress done values {done}")


def _compare(findings: Findings, name: str, held: StepText | None, stored: str, what: str) -> None:
    if held is None:
        findings.unexpected.append(f"{name}: {what} announced without its text streamed")
    elif held.text != stored:
        findings.unexpected.append(
            f"{name}: {what}: the streamed text ({len(held.text)} chars, attempt "
            f"{held.attempt}) differs from the stored one ({len(stored)} chars)"
        )


def _last(run: CourseRun) -> str:
    return run.events[-1].event if run.events else "nothing"


# --------------------------------------------------------------------------- the LLM side


async def stored_steps(conn: asyncpg.Connection) -> dict[tuple[str, str, int | None], float]:
    """When each step's result was stored: (course_id, schema, order) → epoch seconds.

    The outbox row announcing a result is written in the transaction that stores it;
    its ``created_at`` is that transaction's start (PostgreSQL ``now()``), which comes
    after the step's LLM call returned and no later than the commit.
    """
    out: dict[tuple[str, str, int | None], float] = {}
    for service, schema in set(STEP_EVENTS.values()):
        rows = await conn.fetch(
            f"""SELECT body->'payload'->>'course_id' AS course_id,
                       (body->'payload'->>'order')::int AS ord,
                       extract(epoch FROM min(created_at)) AS at
                FROM {service}.outbox WHERE schema = $1 GROUP BY 1, 2""",
            schema,
        )
        for r in rows:
            order = r["ord"] if schema in ("lesson.written.v1", "assessment.ready.v1") else None
            out[(r["course_id"], schema, order)] = float(r["at"])
    return out


async def judge_llm(
    conn: asyncpg.Connection,
    records: list[dict[str, Any]],
    findings: Findings,
    unacknowledged: set[str] | None = None,
) -> None:
    """Count LLM requests made after their step's result was stored (re-billed).

    Also counts the courses created by requests whose answer the client never got
    (``unacknowledged`` topics that have a course): not lost, as nobody was told yes.
    """
    rows = await conn.fetch("SELECT profile->>'topic' AS topic, course_id FROM planner.courses")
    topics = {r["topic"]: r["course_id"] for r in rows}
    findings.orphans = len((unacknowledged or set()) & set(topics))
    stored = await stored_steps(conn)
    findings.llm_calls = len(records)
    findings.llm_outcomes = dict(Counter(str(r["outcome"]) for r in records).most_common())
    answered: Counter[str] = Counter()
    for r in records:
        task, course_id = r.get("task"), topics.get(r.get("topic"))
        if task not in STEP_EVENTS or course_id is None:
            continue
        schema = STEP_EVENTS[task][1]
        order = r["order"] if schema in ("lesson.written.v1", "assessment.ready.v1") else None
        at = stored.get((course_id, schema, order))
        if at is not None and r["t_start"] > at:
            findings.rebilled.append(
                f"{task} of course {course_id} lesson {order}: requested "
                f"{r['t_start'] - at:.3f}s after the result was stored ({r['outcome']})"
            )
        if r["outcome"] in ("ok", "invalid_json") and not r.get("repair"):
            if not r.get("verification"):
                answered[f"{r['step']}"] += 1
    findings.steps_generated_twice = sum(1 for n in answered.values() if n > 1)


def judge_clients(runs: list[CourseRun], tally: HttpTally, findings: Findings) -> None:
    """Check every client's course and the HTTP answers."""
    findings.courses = len(runs)
    for run in runs:
        findings.unacknowledged += len(run.unacknowledged_topics)
        findings.reconnects += run.reconnects
        if run.job_id is None:
            findings.not_accepted.append(f"course {run.index}: {'; '.join(run.errors)}")
            continue
        findings.acknowledged += 1
        judge_run(run, findings)
    findings.http_5xx = tally.server_errors
    findings.connection_errors = tally.connection_errors
