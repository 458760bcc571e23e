"""A whole course as a learner makes it: chat, refine, finalise, watch lessons land, read."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.support.client import bearer, create_course, guest_token
from tests.support.processes import Cluster
from tests.support.sse import SseEvent, read_events

pytestmark = pytest.mark.e2e

DONE = frozenset({"course.ready", "job.failed"})


def of(events: list[SseEvent], name: str) -> list[dict]:
    return [e.data["payload"] for e in events if e.event == name]


async def test_chat_refine_finalise_read_revise_export(
    cluster: Cluster, db: asyncpg.Connection
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        auth = bearer(token)
        accepted = await create_course(client, token, duration_hours=6)
        course_id = accepted["course_id"]
        # the welcome plan takes the model >= 400 ms: too early to refine
        early = await client.post(
            f"/v1/courses/{course_id}/messages", json={"text": "x"}, headers=auth
        )
        assert early.status_code == 409 and "still being planned" in early.json()["detail"]
        welcome = await read_events(client, accepted["events_url"], token)
        assert welcome[-1].event == "course.plan_proposed"

        # refine in the same chat: the planner sees the plan and the request
        resp = await client.post(
            f"/v1/courses/{course_id}/messages",
            json={"text": "Please add more hands-on practice."},
            headers=auth,
        )
        assert resp.status_code == 202, resp.text
        refine = await read_events(client, resp.json()["events_url"], token)
        assert refine[-1].event == "course.plan_proposed", [e.event for e in refine]
        refined = refine[-1].data["payload"]["plan_markdown"]
        assert "more hands-on practice" in refined
        assert "".join(p["text"] for p in of(refine, "job.chunk")) == refined

        course = (await client.get(f"/v1/courses/{course_id}", headers=auth)).json()
        assert course["status"] == "planning"
        assert [(t["role"], t["kind"]) for t in course["chat"]] == [
            ("assistant", "welcome"),
            ("user", "request"),
            ("assistant", "plan"),
        ]
        assert course["plan"] == refined
        reply = course["chat"][2]
        assert reply["model"] == "offline/lectern" and reply["output_tokens"] > 0
        assert reply["latency_ms"] is not None

        # finalise: modules, then every lesson, progress, ready, all on one job stream
        resp = await client.post(f"/v1/courses/{course_id}/finalize", headers=auth)
        assert resp.status_code == 202, resp.text
        events = await read_events(client, resp.json()["events_url"], token, until=DONE)
        assert events[-1].event == "course.ready", events[-1].data
        finalized = of(events, "course.plan_finalized")[0]
        modules = finalized["modules"]
        assert len(modules) >= 3
        assert [m["order"] for m in modules] == list(range(1, len(modules) + 1))
        assert all(m["learning_objectives"] and m["estimated_hours"] > 0 for m in modules)
        assert finalized["estimate"]["calls"] == 3 * len(modules)  # lesson, quiz, exercise
        assert finalized["estimate"]["output_tokens"] > 0
        written = of(events, "lesson.written")
        assert sorted(w["order"] for w in written) == [m["order"] for m in modules]
        assessed = of(events, "assessment.ready")
        assert sorted(a["order"] for a in assessed) == [m["order"] for m in modules]
        assert all(a["quiz_id"] and a["multiple_choice"] and a["open_questions"] for a in assessed)
        progress = of(events, "course.progress")
        assert sorted(p["done"] for p in progress) == list(range(1, 2 * len(modules) + 1))
        assert {p["total"] for p in progress} == {2 * len(modules)}
        steps = {p["step"] for p in of(events, "job.chunk")}
        assert {f"lesson:{m['order']}" for m in modules} <= steps, steps
        ready = events[-1].data["payload"]
        assert [m["lesson_id"] for m in ready["modules"]] == [
            next(w["lesson_id"] for w in written if w["order"] == m["order"]) for m in modules
        ]
        assert [m["quiz_id"] for m in ready["modules"]] == [
            next(a["quiz_id"] for a in assessed if a["order"] == m["order"]) for m in modules
        ]

        # the course reads back complete
        course = (await client.get(f"/v1/courses/{course_id}", headers=auth)).json()
        assert course["status"] == "ready"
        assert course["estimate"] == finalized["estimate"]  # a page opened later shows it
        assert [j["kind"] for j in course["jobs"]] == ["plan_course", "refine_plan", "finalize"]
        assert {j["status"] for j in course["jobs"]} == {"completed"}
        assert [m["lesson_status"] for m in course["modules"]] == ["written"] * len(modules)
        assert [m["assessment_status"] for m in course["modules"]] == ["ready"] * len(modules)
        listed = (await client.get("/v1/courses", headers=auth)).json()
        assert [c["course_id"] for c in listed] == [course_id]
        assert listed[0]["lessons_done"] == listed[0]["lessons_total"] == len(modules)
        assert listed[0]["assessments_done"] == len(modules)
        lesson = (await client.get(f"/v1/courses/{course_id}/lessons/1", headers=auth)).json()
        assert lesson["version"] == 1 and "```mermaid" in lesson["markdown"]
        assert "Knowledge check" in lesson["markdown"]

        # the chat is closed once the course is finalised
        resp = await client.post(
            f"/v1/courses/{course_id}/messages", json={"text": "one more change"}, headers=auth
        )
        assert resp.status_code == 409 and "finalised" in resp.json()["detail"]

        # revise a lesson: a new version, the old one kept
        resp = await client.post(
            f"/v1/courses/{course_id}/lessons/1/revise",
            json={"feedback": "Use a kitchen analogy."},
            headers=auth,
        )
        assert resp.status_code == 202, resp.text
        revised = await read_events(
            client, resp.json()["events_url"], token, until={"lesson.revised", "job.failed"}
        )
        assert revised[-1].event == "lesson.revised", revised[-1].data
        assert revised[-1].data["payload"]["previous_version"] == 1
        lesson2 = (await client.get(f"/v1/courses/{course_id}/lessons/1", headers=auth)).json()
        assert lesson2["version"] == 2 and "kitchen analogy" in lesson2["markdown"]
        old = await client.get(f"/v1/courses/{course_id}/lessons/1?version=1", headers=auth)
        assert old.json()["markdown"] == lesson["markdown"]

        # export
        md = await client.get(f"/v1/courses/{course_id}/export?format=markdown", headers=auth)
        assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
        for m in modules:
            assert m["title"] in md.text
        html = await client.get(f"/v1/courses/{course_id}/export?format=html", headers=auth)
        assert html.status_code == 200 and '<pre class="mermaid">' in html.text
        bad = await client.get(f"/v1/courses/{course_id}/export?format=pdf", headers=auth)
        assert bad.status_code == 422

        # nobody else sees any of it
        other = bearer(await guest_token(client))
        for path in ("", "/lessons/1", "/export"):
            resp = await client.get(f"/v1/courses/{course_id}{path}", headers=other)
            assert resp.status_code == 404, (path, resp.text)
        for path, body in (("/messages", {"text": "x"}), ("/finalize", None)):
            resp = await client.post(f"/v1/courses/{course_id}{path}", json=body, headers=other)
            assert resp.status_code == 404, (path, resp.text)
        assert (await client.get("/v1/courses", headers=other)).json() == []

    stored = await db.fetch(
        "SELECT position, version FROM content.lessons WHERE course_id = $1", course_id
    )
    assert len([r for r in stored if r["version"] == 1]) == len(modules)


async def test_lessons_are_written_in_parallel(cluster: Cluster) -> None:
    """8 modules: the lesson and assessment phase takes about one of each, not eight."""
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        accepted = await create_course(
            client, token, topic="Data engineering", duration_hours=16, auto_finalize=True
        )
        events = await read_events(client, accepted["events_url"], token, until=DONE)
    assert events[-1].event == "course.ready", events[-1].data
    assert len(of(events, "lesson.written")) == 8
    assert len(of(events, "assessment.ready")) == 8
    steps = {"write_lesson", "quiz", "coding_exercise"}
    calls = [p for p in of(events, "llm.call_completed") if p["task"] in steps]
    assert len(calls) == 8 * 3
    one_lesson = max(c["latency_ms"] for c in calls) / 1000
    serial = sum(c["latency_ms"] for c in calls) / 1000

    def at(e: SseEvent) -> float:
        from datetime import datetime

        return datetime.fromisoformat(e.data["occurred_at"]).timestamp()

    start = at(next(e for e in events if e.event == "course.plan_finalized"))
    phase = at(events[-1]) - start
    assert phase < serial / 2, f"lesson phase {phase:.2f}s vs {serial:.2f}s serial"
    # one lesson, then its quiz and exercise side by side: about two calls' time
    assert phase < one_lesson * 3 + 1.0, f"lesson phase {phase:.2f}s vs one {one_lesson:.2f}s"


async def test_invalid_modules_fail_the_job_with_a_reason(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        accepted = await create_course(
            client, token, expectations="[offline:invalid-json]", auto_finalize=True
        )
        events = await read_events(client, accepted["events_url"], token, until=DONE)
        assert events[-1].event == "job.failed", [e.event for e in events]
        failed = events[-1].data["payload"]
        assert failed["failed_schema"] == "planner.finalize_course.v1"
        assert "invalid" in failed["reason"] and "repair" in failed["reason"]
        assert failed["course_id"] == accepted["course_id"]
        # the model was asked twice (answer + one repair), not retried forever
        finals = [p for p in of(events, "llm.call_completed") if p["task"] == "finalise_modules"]
        assert len(finals) == 2, finals
        course = await client.get(f"/v1/courses/{accepted['course_id']}", headers=bearer(token))
        assert course.json()["status"] == "planning" and course.json()["modules"] == []
