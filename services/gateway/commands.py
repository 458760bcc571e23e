"""Turning an accepted request into a job and a command, and asking services over RPC."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from services.gateway.auth import Principal
from services.gateway.budgets import require_budget_in
from services.gateway.store import jobs
from shared import rpc
from shared.contracts.base import Message, new_id
from shared.db import autocommit
from shared.metrics import JOBS

_NEW_JOB = insert(jobs)  # run with the row as parameters (built once)


class Accepted(BaseModel):
    course_id: str = Field(description="The course concerned.")
    job_id: str = Field(description="Watch it at GET /v1/jobs/{job_id}/events.")
    events_url: str = Field(description="Where to stream the job's events (SSE).")


def envelope(who: Principal) -> dict[str, Any]:
    """Envelope fields of a new job's command: a new job id, correlated with itself."""
    job_id = new_id()
    return {
        "job_id": job_id,
        "correlation_id": job_id,
        "tenant_id": who.tenant_id,
        "user_id": who.user_id,
    }


async def submit(
    request: Request, who: Principal, command: Message, *, kind: str, final_events: list[str]
) -> Accepted:
    """Record the job, then publish ``command``; the job's stream ends at ``final_events``."""
    runtime = request.app.state.runtime
    course_id = getattr(command.payload, "course_id", None)
    # the job row first: events that arrive for it must find their owner. The budget's
    # check and the job row are one statement each, in autocommit: two round trips
    # where a transaction around them took four (nothing to undo: a refused request
    # leaves the budget row opened, which a later request would do anyway)
    async with autocommit(runtime.sessionmaker).connect() as conn:
        await require_budget_in(conn, request.app.state.settings, who)
        await conn.execute(
            _NEW_JOB,
            {
                "job_id": command.job_id,
                "user_id": who.user_id,
                "tenant_id": who.tenant_id,
                "kind": kind,
                "course_id": course_id,
                "final_events": final_events,
                "status": "running",
                "last_seq": 0,
            },
        )
    try:
        await runtime.publish(command)
    except Exception as exc:
        async with runtime.sessionmaker() as session, session.begin():
            await session.execute(delete(jobs).where(jobs.c.job_id == command.job_id))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the message broker did not accept the request; try again shortly",
        ) from exc
    JOBS.labels(kind, "started").inc()
    return Accepted(
        course_id=course_id or "",
        job_id=command.job_id,
        events_url=f"/v1/jobs/{command.job_id}/events",
    )


async def ask(
    request: Request, service: str, query: str, *, rpc_timeout: float = 10.0, **body: Any
) -> Any:
    """Ask ``service`` over RPC; its 404 becomes ours, silence becomes a 503."""
    try:
        return await rpc.request(
            request.app.state.runtime.broker, service, query, body, timeout=rpc_timeout
        )
    except rpc.RpcError as exc:
        raise HTTPException(exc.status, detail=exc.detail) from exc
    except rpc.RpcUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the {service} service is not answering; try again shortly",
        ) from exc
