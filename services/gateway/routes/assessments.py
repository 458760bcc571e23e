"""Quizzes and coding exercises: read them, answer them, and get the next step.

Grading answers synchronously (the learner waits for the grade): open answers take
an LLM call, code takes a sandbox run, so these queries get a longer RPC timeout.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import Field

from services.gateway.auth import CurrentPrincipal
from services.gateway.budgets import require_budget
from services.gateway.commands import Accepted, ask, envelope, submit
from services.gateway.inputs import CourseId, Input, ResourceId
from services.gateway.rate_limits import GENERATE, GRADE, limit
from services.gateway.routes.lessons import LessonNumber
from shared.contracts.assessment import GenerateExercise, GenerateExercisePayload
from shared.contracts.base import new_id

router = APIRouter(tags=["assessments"])
GRADING_TIMEOUT_S = 90.0


class Answer(Input):
    """One answer: ``choice`` for a multiple-choice question, ``text`` for an open one."""

    question_id: str = Field(min_length=1, max_length=20, examples=["q1"])
    choice: int | None = Field(None, ge=0, le=20, description="Index of the option, from 0.")
    text: str | None = Field(None, max_length=4000, description="Answer to an open question.")


class AttemptBody(Input):
    """Answers to a quiz; questions left out score 0."""

    answers: list[Answer] = Field(
        min_length=1,
        max_length=50,
        examples=[[{"question_id": "q1", "choice": 2}, {"question_id": "q4", "text": "..."}]],
    )


class SubmissionBody(Input):
    """Code for an exercise; it runs in the sandbox against the visible and hidden tests."""

    code: str = Field(min_length=1, max_length=50_000, description="The solution's source.")


class ExerciseRequest(Input):
    """Which way the next exercise should go."""

    difficulty: Literal["easier", "harder"] = Field(examples=["harder"])


def _who(who: Any) -> dict[str, str]:
    return {"user_id": who.user_id, "tenant_id": who.tenant_id}


@router.get("/v1/courses/{course_id}/lessons/{n}/assessment")
async def get_lesson_assessment(
    course_id: CourseId, n: LessonNumber, request: Request, who: CurrentPrincipal
) -> Any:
    """Lesson ``n``'s quiz and coding exercises (no answer keys, no solutions)."""
    return await ask(
        request, "assessment", "get_lesson_assessment", course_id=course_id, order=n, **_who(who)
    )


@router.get("/v1/quizzes/{quiz_id}")
async def get_quiz(quiz_id: ResourceId, request: Request, who: CurrentPrincipal) -> Any:
    """A quiz's questions and the caller's attempts so far."""
    return await ask(request, "assessment", "get_quiz", quiz_id=quiz_id, **_who(who))


@router.post("/v1/quizzes/{quiz_id}/attempts", status_code=status.HTTP_201_CREATED)
async def attempt_quiz(
    quiz_id: ResourceId, body: AttemptBody, request: Request, who: CurrentPrincipal
) -> Any:
    """Grade answers: choices at once, open answers by the model against the rubric."""
    await limit(request, GRADE, who)
    await require_budget(request.app.state.runtime.sessionmaker, request.app.state.settings, who)
    attempt_id = new_id()
    return await ask(
        request,
        "assessment",
        "grade_attempt",
        rpc_timeout=GRADING_TIMEOUT_S,
        attempt_id=attempt_id,
        job_id=attempt_id,
        quiz_id=quiz_id,
        answers=[a.model_dump() for a in body.answers],
        **_who(who),
    )


@router.get("/v1/exercises/{exercise_id}")
async def get_exercise(exercise_id: ResourceId, request: Request, who: CurrentPrincipal) -> Any:
    """An exercise's statement, starter code, visible tests and hints, and past submissions."""
    return await ask(request, "assessment", "get_exercise", exercise_id=exercise_id, **_who(who))


@router.post("/v1/exercises/{exercise_id}/submissions", status_code=status.HTTP_201_CREATED)
async def submit_code(
    exercise_id: ResourceId, body: SubmissionBody, request: Request, who: CurrentPrincipal
) -> Any:
    """Run the exercise's visible and hidden tests on the code; per-test results."""
    await limit(request, GRADE, who)
    return await ask(
        request,
        "assessment",
        "grade_submission",
        rpc_timeout=GRADING_TIMEOUT_S,
        submission_id=new_id(),
        exercise_id=exercise_id,
        code=body.code,
        **_who(who),
    )


@router.post(
    "/v1/courses/{course_id}/lessons/{n}/exercises",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
)
async def request_exercise(
    course_id: CourseId,
    n: LessonNumber,
    body: ExerciseRequest,
    request: Request,
    who: CurrentPrincipal,
) -> Accepted:
    """Write and verify an easier or harder exercise for lesson ``n`` (streams as a job)."""
    await limit(request, GENERATE, who)
    assessment = await ask(
        request, "assessment", "get_lesson_assessment", course_id=course_id, order=n, **_who(who)
    )
    if not assessment["exercises"]:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=assessment["exercise_note"])
    command = GenerateExercise(
        **envelope(who),
        payload=GenerateExercisePayload(course_id=course_id, order=n, difficulty=body.difficulty),
    )
    return await submit(
        request,
        who,
        command,
        kind="generate_exercise",
        final_events=["exercise.ready", "job.failed"],
    )


@router.get("/v1/courses/{course_id}/recommendation")
async def recommendation(course_id: CourseId, request: Request, who: CurrentPrincipal) -> Any:
    """The next step (revise a lesson, move on, an easier or harder exercise) and why."""
    return await ask(request, "assessment", "recommendation", course_id=course_id, **_who(who))
