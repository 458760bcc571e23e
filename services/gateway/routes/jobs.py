"""``/v1/jobs``: a job's status and its event stream (SSE with Last-Event-ID resume).

The stream takes the bearer token in the ``Authorization`` header, or, for an
EventSource (which cannot set headers), a short-lived stream token of that job as
``?access_token=`` (``POST /v1/jobs/{job_id}/stream-token``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import bindparam, select

from services.gateway.auth import (
    CurrentPrincipal,
    Principal,
    bearer_token,
    issue_stream_token,
    verify_stream_token,
    verify_token,
)
from services.gateway.inputs import PG_BIGINT_MAX, check_id
from services.gateway.live import job_stream
from services.gateway.sse import EventStreamResponse
from services.gateway.store import jobs
from shared.db import autocommit

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(check_id)]


class JobOut(BaseModel):
    job_id: str
    kind: str | None
    course_id: str | None
    status: str
    events: int


_JOB = select(jobs).where(jobs.c.job_id == bindparam("job_id"))  # built once


async def _own_job(request: Request, job_id: str, who: Principal) -> Any:
    async with autocommit(request.app.state.runtime.sessionmaker).connect() as conn:
        row = (await conn.execute(_JOB, {"job_id": job_id})).first()
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
    if seq < 0 or seq > PG_BIGINT_MAX:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="Last-Event-ID must be the integer id of an event this stream sent "
            f"(0 to {PG_BIGINT_MAX})",
        )
    return seq


class StreamToken(BaseModel):
    token: str = Field(description="Opens this job's event stream: ?access_token=<token>.")
    expires_in: int = Field(description="Seconds until it can no longer open the stream.")


@router.post("/{job_id}/stream-token", response_model=StreamToken)
async def stream_token(job_id: JobId, request: Request, who: CurrentPrincipal) -> StreamToken:
    """A short-lived token that opens this job's event stream and nothing else.

    For EventSource, which cannot send an ``Authorization`` header: pass it as
    ``GET /v1/jobs/{job_id}/events?access_token=...`` instead of the bearer token, which
    would otherwise end up in URLs (and logs). It is checked when the stream opens;
    an open stream is not cut when it expires.
    """
    await _own_job(request, job_id, who)
    settings = request.app.state.settings
    ttl = int(settings.stream_token_ttl_s)
    token = issue_stream_token(settings.jwt_secret, who.user_id, job_id, ttl)
    return StreamToken(token=token, expires_in=ttl)


async def _stream_caller(request: Request, job_id: str, access_token: str | None) -> Principal:
    """Whoever opens the stream: the bearer of the header, or of this job's stream token."""
    secret = request.app.state.settings.jwt_secret
    token = bearer_token(request)
    if token:
        return verify_token(secret, token)
    if access_token:
        user_id = verify_stream_token(secret, access_token, job_id)
        return Principal(user_id=user_id, tenant_id="", role="", is_guest=False)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing token: send Authorization: Bearer, or ?access_token= with a stream "
        "token from POST /v1/jobs/{job_id}/stream-token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.get(
    "/{job_id}/events",
    response_class=EventStreamResponse,
    status_code=200,  # for the OpenAPI document: the response class takes no status
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def job_events(
    job_id: JobId,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    access_token: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="A stream token of this job (POST /v1/jobs/{job_id}/stream-token), "
            "for EventSource, which cannot send the Authorization header.",
        ),
    ] = None,
) -> EventStreamResponse:
    """The job's events as Server-Sent Events, each with ``id:`` (its sequence number).

    Reconnect with ``Last-Event-ID`` to get only what was missed. The stream ends
    after the job's final event.
    """
    who = await _stream_caller(request, job_id, access_token)
    after = _parse_last_event_id(last_event_id)
    hub = request.app.state.hub
    # watched before the job row is read: an event committed after the read comes live,
    # one committed before is counted in its last_seq (same transaction)
    watcher = hub.watch(job_id, after)
    try:
        row = await _own_job(request, job_id, who)
    except BaseException:
        hub.unwatch(watcher)
        raise
    stream = job_stream(
        request.app.state.event_log,
        hub,
        watcher,
        list(row.final_events),
        stored_up_to=int(row.last_seq),  # nothing stored after ``after``: no log read
    )
    return EventStreamResponse(stream, watcher, on_close=lambda: hub.unwatch(watcher))
