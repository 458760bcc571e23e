"""``/v1/courses``: create, chat, finalise, read and export courses."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import ConfigDict, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from services.gateway import export, lms
from services.gateway.auth import CurrentPrincipal, Principal
from services.gateway.commands import Accepted, ask, envelope, submit
from services.gateway.inputs import CourseId, Input
from services.gateway.rate_limits import GENERATE, limit
from services.gateway.store import events, jobs
from shared.contracts.base import new_id
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    LearnerProfile,
    PlanCourse,
    PlanCoursePayload,
    RefinePlan,
    RefinePlanPayload,
)

router = APIRouter(prefix="/v1/courses", tags=["courses"])
__all__ = ["CourseId", "router"]


class CreateCourse(Input, LearnerProfile):
    """A learner profile; unknown fields are refused so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    auto_finalize: bool = Field(
        False, description="Plan, finalise and write lessons without the chat."
    )


class ChatMessage(Input):
    """The learner's next message in the planning chat."""

    text: str = Field(
        min_length=1,
        max_length=4000,
        description="What to change in the plan.",
        examples=["Add a module on testing and drop the history part."],
    )


async def _course(request: Request, who: Principal, course_id: str) -> dict[str, Any]:
    try:
        course: dict[str, Any] = await ask(
            request, "planner", "get_course", user_id=who.user_id, course_id=course_id
        )
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND and await _being_planned(
            request, who, course_id
        ):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"course {course_id} is still being planned: wait for "
                "course.plan_proposed on its job's events",
            ) from exc
        raise
    return course


async def _being_planned(request: Request, who: Principal, course_id: str) -> bool:
    """Whether the caller created ``course_id`` and its plan is still on its way."""
    async with request.app.state.runtime.sessionmaker() as session:
        row = await session.execute(
            select(jobs.c.job_id).where(
                jobs.c.course_id == course_id,
                jobs.c.user_id == who.user_id,
                jobs.c.kind == "plan_course",
                jobs.c.status == "running",
            )
        )
        return row.first() is not None


async def _require_room_in_chat(request: Request, who: Principal, course_id: str) -> None:
    """409 when the chat already has its most learner messages (those on their way too)."""
    most = request.app.state.settings.max_chat_messages
    async with request.app.state.runtime.sessionmaker() as session:
        sent = await session.scalar(
            select(func.count()).where(
                jobs.c.course_id == course_id,
                jobs.c.user_id == who.user_id,
                jobs.c.kind == "refine_plan",
                jobs.c.status != "failed",
            )
        )
    if (sent or 0) >= most:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the planning chat of course {course_id} is full: at most {most} messages "
            "(LECTERN_MAX_CHAT_MESSAGES); finalise the plan, or start a new course",
        )


def _require_planning(course: dict[str, Any], action: str) -> None:
    if course["status"] != "planning":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"course {course['course_id']} is {course['status']}: "
            f"its plan can only be {action} before it is finalised",
        )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def create_course(body: CreateCourse, request: Request, who: CurrentPrincipal) -> Accepted:
    """Create a course: the planner streams a welcome plan as the job's events.

    With ``auto_finalize`` the job runs on to finalisation and every lesson, and its
    stream ends with ``course.ready``.
    """
    await limit(request, GENERATE, who)
    command = PlanCourse(
        **envelope(who), payload=PlanCoursePayload(course_id=new_id(), **body.model_dump())
    )
    final = ["course.ready"] if body.auto_finalize else ["course.plan_proposed"]
    return await submit(
        request, who, command, kind="plan_course", final_events=[*final, "job.failed"]
    )


@router.get("")
async def list_courses(request: Request, who: CurrentPrincipal) -> list[dict[str, Any]]:
    """The caller's courses, newest first."""
    courses: list[dict[str, Any]] = await ask(
        request, "planner", "list_courses", user_id=who.user_id
    )
    return courses


@router.get("/{course_id}")
async def get_course(course_id: CourseId, request: Request, who: CurrentPrincipal) -> Any:
    """A course: profile, status, planning chat, latest plan, modules and lesson status.

    ``jobs`` lists the course's jobs, oldest first: a client coming back follows a
    running one's ``events_url`` to pick up where generation is.
    """
    course = await _course(request, who, course_id)
    async with request.app.state.runtime.sessionmaker() as session:
        rows = await session.execute(
            select(jobs.c.job_id, jobs.c.kind, jobs.c.status, jobs.c.created_at)
            .where(jobs.c.course_id == course_id, jobs.c.user_id == who.user_id)
            .order_by(jobs.c.created_at)
        )
        course["jobs"] = [
            {
                "job_id": r.job_id,
                "kind": r.kind,
                "status": r.status,
                "events_url": f"/v1/jobs/{r.job_id}/events",
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
        # the estimate made at finalisation, from the event log (by the course's jobs)
        finalized = await session.scalar(
            select(events.c.body)
            .where(
                events.c.job_id.in_([j["job_id"] for j in course["jobs"]]),
                events.c.event == "course.plan_finalized",
            )
            .order_by(events.c.created_at.desc())
            .limit(1)
        )
        course["estimate"] = finalized["payload"]["estimate"] if finalized else None
    return course


@router.post("/{course_id}/messages", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def post_message(
    course_id: CourseId, body: ChatMessage, request: Request, who: CurrentPrincipal
) -> Accepted:
    """Refine the plan: the planner answers in the same chat with an updated plan.

    A chat takes at most ``LECTERN_MAX_CHAT_MESSAGES`` learner messages (409 after that).
    """
    await limit(request, GENERATE, who)
    _require_planning(await _course(request, who, course_id), "refined")
    await _require_room_in_chat(request, who, course_id)
    command = RefinePlan(
        **envelope(who), payload=RefinePlanPayload(course_id=course_id, text=body.text)
    )
    return await submit(
        request,
        who,
        command,
        kind="refine_plan",
        final_events=["course.plan_proposed", "job.failed"],
    )


@router.post("/{course_id}/finalize", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def finalize(course_id: CourseId, request: Request, who: CurrentPrincipal) -> Accepted:
    """Finalise the latest plan into modules and write every lesson (in parallel).

    The job streams ``course.plan_finalized`` (with a cost estimate), each lesson as
    it is written, ``course.progress`` and finally ``course.ready``.
    """
    await limit(request, GENERATE, who)
    _require_planning(await _course(request, who, course_id), "finalised")
    command = FinalizeCourse(**envelope(who), payload=FinalizeCoursePayload(course_id=course_id))
    return await submit(
        request, who, command, kind="finalize", final_events=["course.ready", "job.failed"]
    )


def _filename(course: dict[str, Any], extension: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (course.get("title") or "course").lower()).strip("-")
    return f"{slug[:60] or 'course'}.{extension}"


async def _lms_export(
    request: Request, who: Principal, course: dict[str, Any], lessons: list[Any], format: str
) -> Response:
    """A file for an LMS: it needs the quizzes with their answer keys, from assessment."""
    course_id = course["course_id"]
    quizzes = await ask(
        request,
        "assessment",
        "export_quizzes",
        user_id=who.user_id,
        tenant_id=who.tenant_id,
        course_id=course_id,
    )
    lms_format = lms.FORMATS[format]
    if not (lessons if lms_format.needs == "lesson" else quizzes):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"course {course_id} has no {lms_format.needs} written yet: "
            f"nothing to export as {format}",
        )
    body = await run_in_threadpool(lms_format.render, course, lessons, quizzes)
    filename = _filename(course, lms_format.extension)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=lms_format.media_type, headers=headers)


ExportFormat = Literal["markdown", "html", "scorm", "moodle", "gift"]


@router.get(
    "/{course_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/markdown": {},
                "text/html": {},
                "application/zip": {},
                "application/xml": {},
                "text/plain": {},
            },
            "description": "The course as one file",
        }
    },
)
async def export_course(
    course_id: CourseId,
    request: Request,
    who: CurrentPrincipal,
    format: Annotated[ExportFormat, Query(description="File format.")] = "markdown",
) -> Response:
    """The course as one file: Markdown, self-contained HTML, or for an LMS.

    ``scorm``: a SCORM 1.2 package (a page per lesson with its quiz, the score reported to
    the LMS); ``moodle`` / ``gift``: the quizzes with their answer keys as Moodle XML or
    GIFT, one question category per lesson. 409 while there is nothing to put in the file.
    """
    course = await _course(request, who, course_id)
    found = await ask(request, "content", "list_lessons", user_id=who.user_id, course_id=course_id)
    lessons = found["lessons"]
    if format in lms.FORMATS:
        return await _lms_export(request, who, course, lessons, format)
    filename = _filename(course, "html" if format == "html" else "md")
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "html":
        return HTMLResponse(export.render_html(course, lessons), headers=headers)
    return PlainTextResponse(
        export.render_markdown(course, lessons), media_type="text/markdown", headers=headers
    )
