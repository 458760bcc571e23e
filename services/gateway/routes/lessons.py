"""``/v1/courses/{id}/lessons``: read a lesson (any version) and revise it from feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import Field

from services.gateway.auth import CurrentPrincipal
from services.gateway.commands import Accepted, ask, envelope, submit
from services.gateway.inputs import PG_INT_MAX, CourseId, Input
from services.gateway.rate_limits import GENERATE, limit
from shared.contracts.content import ReviseLesson, ReviseLessonPayload

router = APIRouter(prefix="/v1/courses", tags=["lessons"])
LessonNumber = Annotated[int, Path(ge=1, le=100, description="Module position, from 1.")]


class Feedback(Input):
    """What the learner wants changed in a lesson."""

    feedback: str = Field(
        min_length=1,
        max_length=4000,
        description="What to change.",
        examples=["Explain it with a cooking analogy and add one more example."],
    )


@router.get("/{course_id}/lessons/{n}")
async def get_lesson(
    course_id: CourseId,
    n: LessonNumber,
    request: Request,
    who: CurrentPrincipal,
    version: Annotated[
        int | None, Query(ge=1, le=PG_INT_MAX, description="A past version.")
    ] = None,
) -> Any:
    """Lesson ``n`` of the course (the latest version unless ``version`` is given)."""
    body: dict[str, Any] = {"user_id": who.user_id, "course_id": course_id, "order": n}
    if version is not None:
        body["version"] = version
    return await ask(request, "content", "get_lesson", **body)


@router.post(
    "/{course_id}/lessons/{n}/revise",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
)
async def revise_lesson(
    course_id: CourseId, n: LessonNumber, body: Feedback, request: Request, who: CurrentPrincipal
) -> Accepted:
    """Rewrite lesson ``n`` from feedback; the previous version is kept."""
    await limit(request, GENERATE, who)
    await ask(request, "content", "get_lesson", user_id=who.user_id, course_id=course_id, order=n)
    command = ReviseLesson(
        **envelope(who),
        payload=ReviseLessonPayload(course_id=course_id, order=n, feedback=body.feedback),
    )
    return await submit(
        request, who, command, kind="revise_lesson", final_events=["lesson.revised", "job.failed"]
    )
