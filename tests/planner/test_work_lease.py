"""The work lease's release on the real PostgreSQL: nothing to do once the work is stored,
the lease freed at once when it is not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select

from services.planner.store import metadata
from shared.db import WorkLease, claim_message, make_engine, make_sessionmaker
from shared.settings import get_settings

PROCESSED = metadata.tables[f"{metadata.schema}.processed_messages"]


@pytest.fixture
async def db(infra: dict[str, str]) -> AsyncIterator[tuple[Any, list[str]]]:
    """Sessions, and the statements run through them from now on."""
    engine = make_engine(get_settings("planner"))
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        kind = statement.split(None, 1)[0].upper()
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            kind += " (autocommit)"  # no BEGIN and COMMIT around it
        statements.append(kind)

    yield make_sessionmaker(engine), statements
    await engine.dispose()


async def status_of(sessions: Any, message_id: str) -> str | None:
    async with sessions() as session:
        return await session.scalar(
            select(PROCESSED.c.status).where(PROCESSED.c.message_id == message_id)
        )


async def test_a_lease_whose_work_committed_is_released_without_a_statement(
    db: tuple[Any, list[str]],
) -> None:
    sessions, statements = db
    message_id = str(uuid.uuid4())
    lease = WorkLease(sessions, metadata, "test.lease", message_id)
    assert await lease.acquire()
    async with sessions() as session, session.begin():
        assert await claim_message(session, metadata, "test.lease", message_id)
    statements.clear()
    await lease.release()
    assert statements == []  # the claim made the row 'done': nothing left to free
    assert await status_of(sessions, message_id) == "done"
    again = WorkLease(sessions, metadata, "test.lease", message_id)
    assert not await again.acquire()  # a redelivery sees the work done
    await again.release()


async def test_a_lease_whose_work_rolled_back_is_freed_at_once(
    db: tuple[Any, list[str]],
) -> None:
    """The claim was made, then the transaction failed: the release frees the lease, and
    a retry takes it at once instead of waiting for it to expire."""
    sessions, statements = db
    message_id = str(uuid.uuid4())
    lease = WorkLease(sessions, metadata, "test.lease", message_id, lease_s=60)
    assert await lease.acquire()
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            async with session.begin():
                assert await claim_message(session, metadata, "test.lease", message_id)
                raise RuntimeError("storing the result failed")
        async with session.begin():  # the same session commits other work next
            await session.execute(select(1))
    statements.clear()
    await lease.release()
    assert statements == ["UPDATE (autocommit)"]
    assert await status_of(sessions, message_id) == "working"
    retry = WorkLease(sessions, metadata, "test.lease", message_id, lease_s=60)
    assert await retry._try() == "go"  # not "busy": no waiting out the 60 s lease
    await retry.release()


async def test_a_claim_outside_a_lease_leaves_nothing_behind(
    db: tuple[Any, list[str]],
) -> None:
    from shared import db as shared_db

    sessions, _ = db
    for _ in range(3):
        async with sessions() as session, session.begin():
            assert await claim_message(session, metadata, "test.claim", str(uuid.uuid4()))
    assert not [k for k in shared_db._claims_done if k[1] == "test.claim"]


async def test_taking_a_lease_is_one_statement_outside_a_transaction(
    db: tuple[Any, list[str]],
) -> None:
    """One round trip where a transaction took three; a second delivery finds it held."""
    sessions, statements = db
    message_id = str(uuid.uuid4())
    statements.clear()
    lease = WorkLease(sessions, metadata, "test.lease", message_id)
    assert await lease.acquire()
    assert statements == ["INSERT (autocommit)"]
    statements.clear()
    other = WorkLease(sessions, metadata, "test.lease", message_id)
    assert await other._try() == "busy"
    assert statements == ["INSERT (autocommit)", "SELECT (autocommit)"]
    await lease.release()
