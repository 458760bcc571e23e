"""``/v1/jobs``: a job's status and its event stream (SSE with Last-Event-ID resume)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request, status
from pydantic import BaseModel
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from services.gateway.auth import CurrentPrincipal, Principal
from services.gateway.store import jobs
from services.gateway.streams import job_stream

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=200)]


class JobOut(BaseModel):
    job_id: str
    kind: str | None
    course_id: str | None
    status: str
    events: int


async def _own_job(request: Request, job_id: str, who: Principal) -> Any:
    async with request.app.state.runtime.sessionmaker() as session:
        row = (await session.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
    # another user's job is as unknown as a missing one: no existence leak
    if row is None or row.user_id != who.user_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id} not found")
    return row


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: JobId, request: Request, who: CurrentPrincipal) -> JobOut:
    """A job's status."""
    row = await _own_job(request, job_id, who)
    return JobOut(
        job_id=row.job_id,
        kind=row.kind,
        course_id=row.course_id,
        status=row.status,
        events=row.last_seq,
    )


def _parse_last_event_id(value: str | None) -> int:
    if value is None or value.strip() == "":
        return 0
    try:
        seq = int(value)
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="Last-Event-ID must be the integer id of an event this stream sent",
        ) from exc
    if seq < 0:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="Last-Event-ID must not be negative"
        )
    return seq


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def job_events(
    job_id: JobId,
    request: Request,
    who: CurrentPrincipal,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The job's events as Server-Sent Events, each with ``id:`` (its sequence number).

    Reconnect with ``Last-Event-ID`` to get only what was missed. The stream ends
    after the job's final event.
    """
    after = _parse_last_event_id(last_event_id)
    row = await _own_job(request, job_id, who)
    state = request.app.state

    async def events() -> AsyncIterator[dict[str, Any]]:
        async for event in job_stream(
            state.event_log, state.hub, job_id, after, list(row.final_events)
        ):
            yield {"id": str(event.seq), "event": event.event, "data": json.dumps(event.body)}

    return EventSourceResponse(events(), ping=15)
