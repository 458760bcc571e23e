"""``/v1/courses``: create a course (the planner writes its welcome plan)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from services.gateway.auth import CurrentPrincipal
from services.gateway.store import jobs
from shared.contracts.base import new_id
from shared.contracts.planner import LearnerProfile, PlanCourse, PlanCoursePayload

router = APIRouter(prefix="/v1/courses", tags=["courses"])


class CreateCourse(LearnerProfile):
    """A learner profile; unknown fields are refused so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    auto_finalize: bool = Field(
        False, description="Plan, finalise and write lessons without the chat."
    )


class Accepted(BaseModel):
    course_id: str = Field(description="The new course.")
    job_id: str = Field(description="Watch it at GET /v1/jobs/{job_id}/events.")
    events_url: str = Field(description="Where to stream the job's events (SSE).")


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def create_course(body: CreateCourse, request: Request, who: CurrentPrincipal) -> Accepted:
    """Create a course: the planner streams a welcome plan as the job's events."""
    runtime = request.app.state.runtime
    course_id, job_id = new_id(), new_id()
    final = (
        ["course.ready", "job.failed"]
        if body.auto_finalize
        else [
            "course.plan_proposed",
            "job.failed",
        ]
    )
    command = PlanCourse(
        job_id=job_id,
        correlation_id=job_id,
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        payload=PlanCoursePayload(course_id=course_id, **body.model_dump()),
    )
    # the job row first: events that arrive for it must find their owner
    async with runtime.sessionmaker() as session, session.begin():
        await session.execute(
            insert(jobs).values(
                job_id=job_id,
                user_id=who.user_id,
                tenant_id=who.tenant_id,
                kind="plan_course",
                course_id=course_id,
                final_events=final,
                status="running",
                last_seq=0,
            )
        )
    try:
        await runtime.publish(command)
    except Exception as exc:
        async with runtime.sessionmaker() as session, session.begin():
            await session.execute(delete(jobs).where(jobs.c.job_id == job_id))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the message broker did not accept the request; try again shortly",
        ) from exc
    return Accepted(course_id=course_id, job_id=job_id, events_url=f"/v1/jobs/{job_id}/events")
