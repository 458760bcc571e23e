"""Taking a course as a learner: quizzes, code submissions, the sandbox, the next step."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from tests.support.client import bearer, guest_token, ready_course
from tests.support.isolation import assert_hidden
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e

HOSTILE = {
    "cpu_limit": "def summarise(values):\n    while True:\n        pass\n",
    "memory_limit": "def summarise(values):\n    hog = []\n    while True:\n"
    "        hog.append(bytearray(10**7))\n",
    "blocked": "import os\n\ndef summarise(values):\n    os.fork()\n",
}
SOCKET = (
    "import socket\n\ndef summarise(values):\n"
    "    socket.create_connection(('127.0.0.1', 5672), timeout=1)\n"
)


async def test_take_a_course_quiz_exercise_and_recommendation(
    cluster: Cluster, db: asyncpg.Connection
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        auth = bearer(token)
        accepted, events = await ready_course(
            client, token, topic="Python for data analysis", duration_hours=4
        )
        course_id = accepted["course_id"]
        ready = events[-1].data["payload"]
        assert all(m["quiz_id"] and m["exercise_id"] for m in ready["modules"])

        # the learner's view: no answer keys, no solution, no hidden tests
        view = await client.get(f"/v1/courses/{course_id}/lessons/1/assessment", headers=auth)
        assert view.status_code == 200, view.text
        assessment = view.json()
        quiz, [exercise] = assessment["quiz"], assessment["exercises"]
        assert "correct" not in str(quiz) and "model_answer" not in str(quiz)
        assert "reference_solution" not in exercise and "hidden_tests" not in exercise
        assert exercise["verified"] is True and exercise["hidden_test_count"] >= 1

        # answer the quiz: right choices from the stored key, a good open answer
        key = await db.fetchval(
            "SELECT questions FROM assessment.quizzes WHERE quiz_id = $1", quiz["quiz_id"]
        )
        answers = []
        for q in json.loads(key):
            if q["kind"] == "choice":
                right = next(i for i, o in enumerate(q["options"]) if o["correct"])
                answers.append({"question_id": q["question_id"], "choice": right})
            else:
                answers.append({"question_id": q["question_id"], "text": q["model_answer"]})
        graded = await client.post(
            f"/v1/quizzes/{quiz['quiz_id']}/attempts", json={"answers": answers}, headers=auth
        )
        assert graded.status_code == 201, graded.text
        assert graded.json()["percent"] == 100

        bad = await client.post(
            f"/v1/quizzes/{quiz['quiz_id']}/attempts",
            json={"answers": [{"question_id": "q1", "choice": "second"}]},
            headers=auth,
        )
        assert bad.status_code == 422 and "choice" in bad.text
        bad = await client.post(
            f"/v1/quizzes/{quiz['quiz_id']}/attempts",
            json={"answers": [{"question_id": "q77", "choice": 0}]},
            headers=auth,
        )
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("answers[0].question_id")

        # code: hostile submissions are stopped and named; the service keeps serving
        url = f"/v1/exercises/{exercise['exercise_id']}/submissions"
        for status, code in [*HOSTILE.items(), ("blocked", SOCKET)]:
            resp = await client.post(url, json={"code": code}, headers=auth)
            assert resp.status_code == 201, resp.text
            # a loop on a machine busy with other work may meet the wall clock before
            # its CPU limit: stopped either way (tests/assessment/test_sandbox.py pins each)
            allowed = {"cpu_limit", "timeout"} if status == "cpu_limit" else {status}
            assert resp.json()["status"] in allowed, (status, resp.json())
            assert resp.json()["reason"]
        solution = await db.fetchval(
            "SELECT reference_solution FROM assessment.exercises WHERE exercise_id = $1",
            exercise["exercise_id"],
        )
        resp = await client.post(url, json={"code": solution}, headers=auth)
        assert resp.status_code == 201 and resp.json()["all_passed"], resp.text
        assert {t["suite"] for t in resp.json()["tests"]} == {"visible", "hidden"}
        assert (await client.post(url, json={"code": ""}, headers=auth)).status_code == 422

        rec = await client.get(f"/v1/courses/{course_id}/recommendation", headers=auth)
        assert rec.status_code == 200, rec.text
        assert rec.json()["action"] in {"move_on", "harder_exercise"} and rec.json()["reason"]

        # a harder exercise on request, verified and announced on its own job
        resp = await client.post(
            f"/v1/courses/{course_id}/lessons/1/exercises",
            json={"difficulty": "harder"},
            headers=auth,
        )
        assert resp.status_code == 202, resp.text
        more = await read_events(
            client, resp.json()["events_url"], token, until={"exercise.ready", "job.failed"}
        )
        assert more[-1].event == "exercise.ready", more[-1].data
        assert more[-1].data["payload"]["exercise"]["difficulty"] == "harder"

        # nobody else can read or answer any of it, nor tell it exists (tests/e2e/test_isolation.py
        # has the course, lesson and job calls)
        other = bearer(await guest_token(client))
        quiz_id, exercise_id, job_id = (
            quiz["quiz_id"],
            exercise["exercise_id"],
            more[0].data["job_id"],
        )
        for method, path, real, body in (
            ("GET", f"/v1/courses/{course_id}/lessons/1/assessment", course_id, None),
            ("GET", f"/v1/quizzes/{quiz_id}", quiz_id, None),
            ("POST", f"/v1/quizzes/{quiz_id}/attempts", quiz_id, {"answers": answers}),
            ("GET", f"/v1/exercises/{exercise_id}", exercise_id, None),
            ("POST", url, exercise_id, {"code": solution}),
            (
                "POST",
                f"/v1/courses/{course_id}/lessons/1/exercises",
                course_id,
                {"difficulty": "easier"},
            ),
            ("GET", f"/v1/courses/{course_id}/recommendation", course_id, None),
            ("GET", f"/v1/jobs/{job_id}", job_id, None),
            ("GET", f"/v1/jobs/{job_id}/events", job_id, None),
            ("POST", f"/v1/jobs/{job_id}/stream-token", job_id, None),
        ):
            await assert_hidden(
                client, method, path, headers=other, real=real, missing="not-there", body=body
            )

    stored = await db.fetch(
        "SELECT status FROM assessment.submissions WHERE course_id = $1", course_id
    )
    # the loop's run is stored as cpu_limit, or timeout on a busy machine (see above)
    statuses = sorted("cpu_limit" if r["status"] == "timeout" else r["status"] for r in stored)
    assert statuses == sorted(["cpu_limit", "memory_limit", "blocked", "blocked", "completed"])
