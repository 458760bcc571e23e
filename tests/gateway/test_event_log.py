"""The gateway's event log on the real PostgreSQL: per-job sequence numbers, each message
stored once, a final event ends its job once, tokens charged once per call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from services.gateway.store import budgets, jobs
from services.gateway.streams import EventLog
from shared.db import make_engine, make_sessionmaker
from shared.metrics import JOBS
from shared.settings import get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessionmaker(infra: dict[str, str]) -> AsyncIterator[Any]:
    engine = make_engine(get_settings("gateway"))
    yield make_sessionmaker(engine)
    await engine.dispose()


def event(job_id: str, schema: str, **payload: Any) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "job_id": job_id,
        "schema": schema,
        "tenant_id": "default",
        "user_id": None,
        "payload": payload,
    }


async def job_row(sessionmaker: Any, job_id: str) -> Any:
    async with sessionmaker() as session:
        return (await session.execute(select(jobs).where(jobs.c.job_id == job_id))).one()


async def test_events_are_numbered_per_job_and_stored_once(sessionmaker: Any) -> None:
    log = EventLog(sessionmaker, get_settings("gateway"))
    job_id = f"j-{uuid.uuid4().hex[:12]}"
    sent = [event(job_id, "job.chunk.v1", text=str(i)) for i in range(3)]
    started = JOBS.labels("external", "started")._value.get()
    stored = [await log.record(e) for e in sent]
    assert [s.seq for s in stored if s] == [1, 2, 3]
    assert await log.record(sent[1]) is None  # a redelivery: not stored again
    assert [e.body["payload"]["text"] for e in await log.since(job_id, 0)] == ["0", "1", "2"]
    assert [e.seq for e in await log.since(job_id, 2)] == [3]
    row = await job_row(sessionmaker, job_id)  # an external job: its row made by the log
    assert (row.kind, row.status, row.last_seq) == ("external", "running", 3)
    assert JOBS.labels("external", "started")._value.get() - started == 1
    assert await log.last_seqs([job_id, "no-such-job"]) == {job_id: 3}


async def test_a_final_event_ends_a_running_job_once(sessionmaker: Any) -> None:
    log = EventLog(sessionmaker, get_settings("gateway"))
    job_id = f"j-{uuid.uuid4().hex[:12]}"
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(jobs).values(
                job_id=job_id,
                user_id="u",
                tenant_id="default",
                kind="plan",
                final_events=["course.plan_proposed", "job.failed"],
                status="running",
                last_seq=0,
            )
        )
    completed = JOBS.labels("plan", "completed")._value.get()
    plan_failed = JOBS.labels("plan", "failed")._value.get()
    await log.record(event(job_id, "course.ready.v1"))  # not final for this job
    assert (await job_row(sessionmaker, job_id)).status == "running"
    await log.record(event(job_id, "course.plan_proposed.v1"))
    assert (await job_row(sessionmaker, job_id)).status == "completed"
    await log.record(event(job_id, "job.failed.v1"))  # after the end: stored, not counted
    row = await job_row(sessionmaker, job_id)
    assert (row.status, row.last_seq) == ("completed", 3)
    assert JOBS.labels("plan", "completed")._value.get() - completed == 1
    assert JOBS.labels("plan", "failed")._value.get() == plan_failed

    # an external job whose first event is final starts and ends at once
    other = f"j-{uuid.uuid4().hex[:12]}"
    failed = JOBS.labels("external", "failed")._value.get()
    await log.record(event(other, "job.failed.v1"))
    assert (await job_row(sessionmaker, other)).status == "failed"
    assert JOBS.labels("external", "failed")._value.get() - failed == 1


async def test_tokens_are_charged_once_per_stored_call(sessionmaker: Any) -> None:
    log = EventLog(sessionmaker, get_settings("gateway"))
    job_id, user_id = f"j-{uuid.uuid4().hex[:12]}", f"u-{uuid.uuid4().hex[:12]}"
    call = {
        **event(job_id, "llm.call_completed.v1", input_tokens=30, output_tokens=12),
        "user_id": user_id,
    }
    assert await log.record(call) is not None
    assert await log.record(call) is None  # redelivered: neither stored nor charged again
    async with sessionmaker() as session:
        used = (
            await session.execute(
                select(budgets.c.account, budgets.c.tokens_used).where(
                    budgets.c.account.contains(user_id)
                )
            )
        ).all()
    assert [u.tokens_used for u in used] == [42]


async def test_the_log_writer_gets_past_a_connection_the_server_dropped(
    sessionmaker: Any,
) -> None:
    """The gateway's writer has no pre-ping: a connection dropped while pooled (a
    database restart) fails one statement, and the event is stored on a new one."""
    settings = get_settings("gateway")
    writer = make_engine(settings, pool_size=1, pre_ping=False)
    try:
        log = EventLog(sessionmaker, settings, writer=writer)
        job_id = f"j-{uuid.uuid4().hex[:12]}"
        assert (await log.record_in_order(event(job_id, "job.chunk.v1"))) is not None
        async with writer.connect() as conn:  # the one pooled connection
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with sessionmaker() as session:
            assert (await session.execute(text(f"SELECT pg_terminate_backend({pid})"))).scalar()
        stored = await log.record_in_order(event(job_id, "job.chunk.v1"), patience=10)
        assert stored is not None and stored.seq == 2
    finally:
        await writer.dispose()
