"""Tenant isolation: another user gets a 404 for everything of yours, exactly as for
something that does not exist, whatever state it is in (so nothing leaks that it exists).

The quiz, exercise, assessment and recommendation calls are checked in
``test_assessment_flow.py``, where a learner has answered them.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.client import bearer, create_course, guest_token, ready_course
from tests.support.isolation import assert_hidden
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


async def test_another_user_cannot_tell_your_courses_lessons_and_jobs_exist(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        owner = await guest_token(client)
        accepted, events = await ready_course(client, owner, duration_hours=2)
        course, job = accepted["course_id"], accepted["job_id"]
        lesson_id = events[-1].data["payload"]["modules"][0]["lesson_id"]
        # a second course still in planning: refining it is what its owner may do
        planning = await create_course(client, owner)
        await read_events(client, planning["events_url"], owner)

        intruder = bearer(await guest_token(client))
        missing = str(uuid.uuid4())

        async def hidden(method: str, path: str, real: str, **kw: object) -> None:
            await assert_hidden(
                client, method, path, headers=intruder, real=real, missing=missing, **kw
            )

        for cid in (course, planning["course_id"]):
            await hidden("GET", f"/v1/courses/{cid}", cid)
            await hidden("POST", f"/v1/courses/{cid}/messages", cid, body={"text": "mine now"})
            await hidden("POST", f"/v1/courses/{cid}/finalize", cid)  # ready: 409 to its owner
            for fmt in ("markdown", "html", "scorm", "moodle", "gift"):
                await hidden("GET", f"/v1/courses/{cid}/export", cid, params={"format": fmt})
        await hidden("GET", f"/v1/courses/{course}/lessons/1", course)
        await hidden("GET", f"/v1/courses/{course}/lessons/1", course, params={"version": "1"})
        await hidden(
            "POST", f"/v1/courses/{course}/lessons/1/revise", course, body={"feedback": "x"}
        )
        await hidden(
            "POST",
            f"/v1/courses/{course}/lessons/1/exercises",
            course,
            body={"difficulty": "easier"},
        )
        await hidden("GET", f"/v1/courses/{course}/recommendation", course)
        for jid in (job, planning["job_id"]):
            await hidden("GET", f"/v1/jobs/{jid}", jid)
            await hidden("GET", f"/v1/jobs/{jid}/events", jid)
            await hidden("POST", f"/v1/jobs/{jid}/stream-token", jid)
        await hidden("POST", "/v1/feedback", job, body={"job_id": job, "rating": 1})
        await hidden("POST", "/v1/feedback", lesson_id, body={"lesson_id": lesson_id, "rating": 1})

        # the intruder's own stream token does not open the owner's stream (refused before
        # the job is looked up: a missing job answers the same)
        mine = await create_course(client, intruder["Authorization"][7:])
        token = await client.post(f"/v1/jobs/{mine['job_id']}/stream-token", headers=intruder)
        assert token.status_code == 200, token.text
        stream = {"access_token": token.json()["token"]}
        await assert_hidden(
            client,
            "GET",
            f"/v1/jobs/{job}/events",
            headers={},
            real=job,
            missing=missing,
            params=stream,
            status=401,
        )

        # nothing of the owner's was changed by any of it
        mine_again = (await client.get(f"/v1/courses/{course}", headers=bearer(owner))).json()
        assert mine_again["status"] == "ready"
        assert [j["kind"] for j in mine_again["jobs"]] == ["plan_course"]
        chat = await client.get(f"/v1/courses/{planning['course_id']}", headers=bearer(owner))
        assert [t["role"] for t in chat.json()["chat"]] == ["assistant"]
        listed = (await client.get("/v1/courses", headers=intruder)).json()
        assert not {course, planning["course_id"]} & {c["course_id"] for c in listed}
