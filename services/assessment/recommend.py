"""The next step for a learner, from their attempts: revise, move on, harder or easier.

Rules, not a model call: the recommendation is instant, free, the same for the same
history, and its reason quotes the scores it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from services.assessment.queries import CourseQuery
from services.assessment.store import attempts, exercises, lessons, submissions
from shared.rpc import not_found

REVISE_BELOW = 0.6  # quiz share under which the lesson needs another read
MASTERED_FROM = 0.9  # quiz share from which a harder exercise is worth it
STUCK_AFTER = 3  # failed submissions in a row before an easier exercise is offered


@dataclass
class LessonRecord:
    """What a learner did on one lesson."""

    order: int
    title: str
    exercise_ids: list[str]
    difficulties: dict[str, str]
    quiz_share: float | None = None  # latest attempt, score / max
    quiz_missed: list[str] = field(default_factory=list)
    last_activity: Any = None
    passed: set[str] = field(default_factory=set)  # exercise ids with a passing submission
    first_try: set[str] = field(default_factory=set)  # ... passed on the first submission
    failures_in_a_row: int = 0
    latest_failure: str = ""


def _touch(record: LessonRecord, when: Any) -> None:
    if record.last_activity is None or when > record.last_activity:
        record.last_activity = when


async def _records(sessionmaker: Any, query: CourseQuery) -> list[LessonRecord]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(lessons)
                .where(
                    lessons.c.course_id == query.course_id,
                    lessons.c.user_id == query.user_id,
                    lessons.c.tenant_id == query.tenant_id,
                )
                .distinct(lessons.c.position)
                .order_by(lessons.c.position, lessons.c.version.desc())
            )
        ).all()
        if not rows:
            raise not_found(f"assessments of course {query.course_id}")
        ex_rows = (
            await session.execute(
                select(exercises.c.exercise_id, exercises.c.position, exercises.c.difficulty)
                .where(exercises.c.course_id == query.course_id)
                .order_by(exercises.c.created_at)
            )
        ).all()
        tries = (
            await session.execute(
                select(attempts)
                .where(attempts.c.course_id == query.course_id, attempts.c.user_id == query.user_id)
                .order_by(attempts.c.created_at)
            )
        ).all()
        subs = (
            await session.execute(
                select(submissions)
                .where(
                    submissions.c.course_id == query.course_id,
                    submissions.c.user_id == query.user_id,
                )
                .order_by(submissions.c.created_at)
            )
        ).all()
    records = {
        r.position: LessonRecord(order=r.position, title=r.title, exercise_ids=[], difficulties={})
        for r in rows
    }
    for e in ex_rows:
        if e.position in records:
            records[e.position].exercise_ids.append(e.exercise_id)
            records[e.position].difficulties[e.exercise_id] = e.difficulty
    for a in tries:
        record = records.get(a.position)
        if record is None:
            continue
        record.quiz_share = a.score / a.max_score if a.max_score else 0.0
        record.quiz_missed = [r["question_id"] for r in a.results if r["score"] < r["max_score"]]
        _touch(record, a.created_at)
    seen: set[str] = set()
    for s in subs:
        record = records.get(s.position)
        if record is None:
            continue
        ok = s.status == "completed" and s.total > 0 and s.passed == s.total
        if ok:
            record.passed.add(s.exercise_id)
            if s.exercise_id not in seen:
                record.first_try.add(s.exercise_id)
            record.failures_in_a_row = 0
        else:
            record.failures_in_a_row += 1
            record.latest_failure = f"{s.passed} of {s.total} tests passed ({s.status})"
        seen.add(s.exercise_id)
        _touch(record, s.created_at)
    return [records[k] for k in sorted(records)]


def _pct(share: float) -> str:
    return f"{round(share * 100)}%"


def decide(records: list[LessonRecord], course_id: str) -> dict[str, Any]:
    """The recommendation for a course from its lesson records (in course order)."""
    active = [r for r in records if r.last_activity is not None]
    link = f"/v1/courses/{course_id}/lessons"

    def out(action: str, record: LessonRecord, reason: str, **extra: Any) -> dict[str, Any]:
        return {
            "course_id": course_id,
            "action": action,
            "lesson": {"order": record.order, "title": record.title},
            "reason": reason,
            **extra,
            "evidence": [
                {
                    "order": r.order,
                    "quiz_percent": None if r.quiz_share is None else round(r.quiz_share * 100),
                    "exercises_passed": len(r.passed),
                    "exercises": len(r.exercise_ids),
                }
                for r in records
            ],
        }

    if not active:
        first = records[0]
        return out(
            "take_quiz",
            first,
            f"You have not tried anything yet: read lesson {first.order} ({first.title}) "
            "and take its quiz.",
            next=f"{link}/{first.order}/assessment",
        )
    current = max(active, key=lambda r: r.last_activity)
    if current.quiz_share is not None and current.quiz_share < REVISE_BELOW:
        missed = ", ".join(current.quiz_missed) or "several questions"
        return out(
            "revise_lesson",
            current,
            f"You scored {_pct(current.quiz_share)} on the quiz of lesson {current.order} "
            f"({current.title}); you missed {missed}. Re-read the lesson, or ask for a "
            "revision that explains it differently, then retake the quiz.",
            next=f"{link}/{current.order}/revise",
        )
    pending = [e for e in current.exercise_ids if e not in current.passed]
    if current.failures_in_a_row >= STUCK_AFTER and pending:
        return out(
            "easier_exercise",
            current,
            f"Your last {current.failures_in_a_row} submissions for lesson {current.order}'s "
            f"exercise did not pass (latest: {current.latest_failure}). An easier exercise "
            "builds the step you are missing.",
            difficulty="easier",
            next=f"{link}/{current.order}/exercises",
        )
    if current.quiz_share is None:
        return out(
            "take_quiz",
            current,
            f"You started lesson {current.order} ({current.title}) but have not taken its quiz.",
            next=f"{link}/{current.order}/assessment",
        )
    if pending:
        return out(
            "try_exercise",
            current,
            f"You scored {_pct(current.quiz_share)} on the quiz of lesson {current.order}; "
            "now put it into practice with its coding exercise.",
            exercise_id=pending[0],
        )
    harder_done = any(current.difficulties.get(e) == "harder" for e in current.passed)
    if (
        current.quiz_share >= MASTERED_FROM
        and current.first_try
        and not harder_done
        and current.exercise_ids
    ):
        return out(
            "harder_exercise",
            current,
            f"You scored {_pct(current.quiz_share)} on the quiz of lesson {current.order} and "
            "passed its exercise on the first try: a harder exercise will stretch you.",
            difficulty="harder",
            next=f"{link}/{current.order}/exercises",
        )
    later = [r for r in records if r.order > current.order]
    if later:
        nxt = later[0]
        practice = " and passed its exercises" if current.exercise_ids else ""
        return out(
            "move_on",
            nxt,
            f"You scored {_pct(current.quiz_share)} on the quiz of lesson {current.order}"
            f"{practice}: move on to lesson {nxt.order} ({nxt.title}).",
            next=f"{link}/{nxt.order}/assessment",
        )
    weak = [r for r in records if r.quiz_share is None or r.quiz_share < REVISE_BELOW]
    if weak:
        return out(
            "revise_lesson" if weak[0].quiz_share is not None else "take_quiz",
            weak[0],
            f"You reached the last lesson, but lesson {weak[0].order} ({weak[0].title}) "
            + (
                f"is at {_pct(weak[0].quiz_share)}: revisit it to finish the course strong."
                if weak[0].quiz_share is not None
                else "has no quiz attempt yet: take it to finish the course."
            ),
            next=f"{link}/{weak[0].order}/assessment",
        )
    return out(
        "course_complete",
        current,
        "You passed every lesson's quiz and exercises: the course is complete.",
    )


async def recommend(sessionmaker: Any, query: CourseQuery) -> dict[str, Any]:
    """The caller's next step in a course, with the reason and the scores behind it."""
    return decide(await _records(sessionmaker, query), query.course_id)
