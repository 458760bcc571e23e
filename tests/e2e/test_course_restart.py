"""The course process survives its planner being killed mid-course."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.support.client import create_course, guest_token
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


async def test_planner_killed_mid_course_still_completes_once(
    cluster: Cluster, db: asyncpg.Connection
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        accepted = await create_course(
            client, token, topic="Rust ownership", duration_hours=10, auto_finalize=True
        )
        url, course_id = accepted["events_url"], accepted["course_id"]
        before = await read_events(client, url, token, until={"course.plan_finalized"})
        assert before[-1].event == "course.plan_finalized", before[-1].data
        total = len(before[-1].data["payload"]["modules"])

        cluster["planner"].kill()  # kill -9 while the lessons are being written
        for _ in range(150):  # lessons and assessments land while the planner is down
            assessed = await db.fetchval(
                "SELECT count(*) FROM assessment.lessons WHERE course_id = $1", course_id
            )
            if assessed == total:
                break
            await asyncio.sleep(0.1)
        cluster["planner"].start()
        cluster["planner"].wait_ready()

        after = await read_events(
            client, url, token, last_event_id=before[-1].id, until={"course.ready", "job.failed"}
        )
    assert after[-1].event == "course.ready", after[-1].data
    events = before + after
    progress = [e.data["payload"]["done"] for e in events if e.event == "course.progress"]
    assert sorted(progress) == list(range(1, 2 * total + 1)), progress
    assert [e.event for e in events].count("course.ready") == 1
    lessons = await db.fetch(
        "SELECT position, version FROM content.lessons WHERE course_id = $1", course_id
    )
    assert sorted(r["position"] for r in lessons) == list(range(1, total + 1)), "no duplicates"
    modules = await db.fetch(
        "SELECT lesson_status, assessment_status FROM planner.modules WHERE course_id = $1",
        course_id,
    )
    assert [(m["lesson_status"], m["assessment_status"]) for m in modules] == [
        ("written", "ready")
    ] * total
