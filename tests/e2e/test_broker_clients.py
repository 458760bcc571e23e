"""An internal system driving Lectern with a plain AMQP client (no Lectern code)."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from tests.support.client import collect_events, publish_command, wait_rows
from tests.support.processes import Cluster

pytestmark = pytest.mark.e2e


async def test_redelivered_command_produces_no_second_plan(
    cluster: Cluster, infra: dict[str, str], db: asyncpg.Connection
) -> None:
    job_id, course_id, message_id = (str(uuid.uuid4()) for _ in range(3))
    command = {
        "message_id": message_id,
        "job_id": job_id,
        "correlation_id": "lms-42",
        "tenant_id": "acme",
        "schema": "planner.plan_course.v1",
        "payload": {
            "course_id": course_id,
            "topic": "SQL window functions",
            "level": "advanced",
            "duration_hours": 6,
            "language": "en",
        },
    }
    # the same message twice, as a redelivery would bring it
    await publish_command(infra["AMQP_URL"], command, times=2)

    proposed = await wait_rows(
        db,
        "SELECT body FROM gateway.events WHERE job_id = $1 AND event = $2",
        job_id,
        "course.plan_proposed",
    )
    assert len(proposed) == 1, "one plan, however often the command is delivered"
    body = json.loads(proposed[0]["body"])
    assert body["correlation_id"] == "lms-42" and body["tenant_id"] == "acme"
    assert body["causation_id"] == message_id
    calls = await db.fetch("SELECT id FROM prompts.executions WHERE job_id = $1", job_id)
    assert len(calls) == 1, "the LLM was paid once"
    chats = await db.fetch("SELECT id FROM planner.chat_messages WHERE course_id = $1", course_id)
    assert len(chats) == 1


async def test_unknown_command_gets_job_failed(
    cluster: Cluster, infra: dict[str, str], db: asyncpg.Connection
) -> None:
    job_id = str(uuid.uuid4())
    await publish_command(
        infra["AMQP_URL"],
        {
            "job_id": job_id,
            "correlation_id": "x",
            "schema": "planner.plan_course.v9",
            "payload": {},
        },
    )
    failed = await wait_rows(
        db,
        "SELECT body FROM gateway.events WHERE job_id = $1 AND event = 'job.failed'",
        job_id,
        settle=0.5,
    )
    assert len(failed) == 1
    payload = json.loads(failed[0]["body"])["payload"]
    assert "planner.plan_course.v9" in payload["reason"]
    assert payload["retryable"] is False


async def test_autopilot_course_through_the_broker_alone(
    cluster: Cluster, infra: dict[str, str], db: asyncpg.Connection
) -> None:
    """An LMS publishes one command and reads the whole course off lectern.events."""
    job_id, course_id = str(uuid.uuid4()), str(uuid.uuid4())
    correlation = f"lms-{uuid.uuid4().hex[:8]}"
    listening = asyncio.Event()
    collector = asyncio.create_task(collect_events(infra["AMQP_URL"], correlation, listening))
    await listening.wait()
    await publish_command(
        infra["AMQP_URL"],
        {
            "message_id": str(uuid.uuid4()),
            "job_id": job_id,
            "correlation_id": correlation,
            "tenant_id": "acme-lms",
            "schema": "planner.plan_course.v1",
            "payload": {
                "course_id": course_id,
                "topic": "Negotiation skills",
                "duration_hours": 6,
                "goal_context": "corporate",
                "auto_finalize": True,
            },
        },
    )
    events = await collector
    kinds = [e["schema"] for e in events]
    assert kinds[-1] == "course.ready.v1", kinds
    assert all(e["correlation_id"] == correlation and e["job_id"] == job_id for e in events)
    assert all(e["tenant_id"] == "acme-lms" for e in events)
    proposed = [e for e in events if e["schema"] == "course.plan_proposed.v1"]
    finalized = [e for e in events if e["schema"] == "course.plan_finalized.v1"]
    written = [e for e in events if e["schema"] == "lesson.written.v1"]
    assessed = [e for e in events if e["schema"] == "assessment.ready.v1"]
    progress = [e for e in events if e["schema"] == "course.progress.v1"]
    assert len(proposed) == len(finalized) == 1
    modules = finalized[0]["payload"]["modules"]
    assert len(written) == len(assessed) == len(modules)
    assert len(progress) == 2 * len(modules)
    # a negotiation course has no code: quizzes, no exercises, and it says why
    assert all(a["payload"]["exercise"] is None for a in assessed)
    assert all("no code" in a["payload"]["exercise_note"] for a in assessed)
    ready = events[-1]["payload"]
    assert ready["course_id"] == course_id
    assert {m["lesson_id"] for m in ready["modules"]} == {
        w["payload"]["lesson_id"] for w in written
    }
    assert {m["module_id"] for m in ready["modules"]} == {m["module_id"] for m in modules}
    row = await db.fetchrow("SELECT status FROM planner.courses WHERE course_id = $1", course_id)
    assert row["status"] == "ready"
