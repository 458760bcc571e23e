"""The prompt registry with every service running: label moves, A/B splits, the log."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from services.gateway.auth import Principal, issue_token
from shared.settings import DEV_JWT_SECRET
from tests.support.client import bearer, create_course, guest_token
from tests.support.processes import Cluster
from tests.support.sse import SseEvent, read_events

pytestmark = pytest.mark.e2e

LESSON = "content.write_lesson"
DONE = frozenset({"course.ready", "job.failed"})


def admin_headers() -> dict[str, str]:
    admin = Principal(user_id="prompt-admin", tenant_id="default", role="admin", is_guest=False)
    return bearer(issue_token(DEV_JWT_SECRET, admin))


def calls(events: list[SseEvent], prompt: str) -> list[dict[str, Any]]:
    return [
        e.data["payload"]
        for e in events
        if e.event == "llm.call_completed" and e.data["payload"]["prompt_name"] == prompt
    ]


async def course(client: httpx.AsyncClient, token: str) -> tuple[str, list[SseEvent]]:
    accepted = await create_course(client, token, duration_hours=4, auto_finalize=True)
    events = await read_events(client, accepted["events_url"], token, until=DONE)
    assert events[-1].event == "course.ready", events[-1].data
    return accepted["course_id"], events


async def test_labels_experiments_log_and_feedback(cluster: Cluster) -> None:
    admin = admin_headers()
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        learner = bearer(token)
        assert (await client.get("/v1/admin/prompts", headers=learner)).status_code == 403

        listed = (await client.get("/v1/admin/prompts", headers=admin)).json()
        seeded = {t["name"]: t for t in listed}
        assert seeded[LESSON]["labels"]["production"] == 1  # seeded from the shipped default

        _, before = await course(client, token)
        assert {c["prompt_version"] for c in calls(before, LESSON)} == {"1"}

        # a prompt engineer saves version 2 and moves production: no restart needed
        v1 = (await client.get(f"/v1/admin/prompts/{LESSON}/versions/1", headers=admin)).json()
        body = {
            "messages": [
                {**m, "content": m["content"] + "\nKeep paragraphs short."}
                if m["role"] == "system"
                else m
                for m in v1["messages"]
            ],
            "variables": v1["variables"],
            "model": v1["model"],
            "change_note": "Shorter paragraphs",
        }
        saved = await client.post(f"/v1/admin/prompts/{LESSON}/versions", json=body, headers=admin)
        assert saved.status_code == 201, saved.text
        assert saved.json()["version"] == 2
        diff = await client.get(f"/v1/admin/prompts/{LESSON}/diff?a=1&b=2", headers=admin)
        assert "+Keep paragraphs short." in diff.json()["diff"]
        moved = await client.put(
            f"/v1/admin/prompts/{LESSON}/labels/production", json={"version": 2}, headers=admin
        )
        assert moved.status_code == 200, moved.text
        course_id, after = await course(client, token)
        assert {c["prompt_version"] for c in calls(after, LESSON)} == {"2"}

        # missing a variable the services supply: refused, naming it
        bad = {**body, "variables": {}, "messages": [{"role": "system", "content": "Hi"}]}
        resp = await client.post(f"/v1/admin/prompts/{LESSON}/versions", json=bad, headers=admin)
        assert resp.status_code == 422 and "missing" in resp.json()["detail"]

        # an A/B split: every lesson of a course gets its course's version
        started = await client.post(
            f"/v1/admin/prompts/{LESSON}/experiments",
            json={"arms": [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}]},
            headers=admin,
        )
        assert started.status_code == 201, started.text
        experiment = started.json()["experiment_id"]
        per_course = []
        v2_reported = calls(after, LESSON)  # every write_lesson call made with version 2
        for _ in range(6):
            _, events = await course(client, token)
            v2_reported += [c for c in calls(events, LESSON) if c["prompt_version"] == "2"]
            versions = {c["prompt_version"] for c in calls(events, LESSON)}
            assert len(versions) == 1, versions  # sticky within the course
            assert {c["experiment_id"] for c in calls(events, LESSON)} == {experiment}
            per_course.append(versions.pop())
        lessons_per_course = len(calls(after, LESSON))
        expected = {v: lessons_per_course * per_course.count(str(v)) for v in (1, 2)}
        for _ in range(50):
            url = f"/v1/admin/experiments/{experiment}"
            report = (await client.get(url, headers=admin)).json()
            counted = {a["version"]: a["calls"] for a in report["arms"]}
            if counted == expected:
                break
            await asyncio.sleep(0.2)
        assert counted == expected
        stop = await client.post(
            f"/v1/admin/experiments/{experiment}/stop", json={"promote": 1}, headers=admin
        )
        assert stop.status_code == 200 and stop.json()["status"] == "stopped"

        # feedback on a lesson counts for the version that wrote it
        lesson = (await client.get(f"/v1/courses/{course_id}/lessons/1", headers=learner)).json()
        resp = await client.post(
            "/v1/feedback", json={"lesson_id": lesson["lesson_id"], "rating": 4}, headers=learner
        )
        assert resp.status_code == 201, resp.text
        other = bearer(await guest_token(client))
        resp = await client.post(
            "/v1/feedback", json={"lesson_id": lesson["lesson_id"], "rating": 1}, headers=other
        )
        assert resp.status_code == 404

        # analytics agree with what the services reported (the log consumes asynchronously)
        v2_calls = len(calls(after, LESSON)) + lessons_per_course * per_course.count("2")
        for _ in range(50):
            stats = (await client.get(f"/v1/admin/analytics?name={LESSON}", headers=admin)).json()
            by_version = {s["prompt_version"]: s for s in stats}
            if by_version.get("2", {}).get("calls") == v2_calls:
                break
            await asyncio.sleep(0.2)
        assert by_version["2"]["calls"] == v2_calls
        assert by_version["2"]["mean_rating"] == 4.0 and by_version["2"]["ratings"] == 1
        assert len(v2_reported) == v2_calls
        mean_out = sum(c["output_tokens"] for c in v2_reported) / v2_calls
        mean_in = sum(c["input_tokens"] for c in v2_reported) / v2_calls
        assert by_version["2"]["mean_output_tokens"] == pytest.approx(mean_out, abs=0.1)
        assert by_version["2"]["mean_input_tokens"] == pytest.approx(mean_in, abs=0.1)


async def test_a_down_registry_falls_back_to_the_shipped_prompts(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        cluster["prompts"].stop()
        cluster["content"].stop()  # a fresh process: nothing cached
        cluster["content"].start()
        cluster["content"].wait_ready()
        try:
            _, events = await course(client, token)
            lessons = calls(events, LESSON)
            assert lessons and all(
                c["prompt_version"] == "default" and c["prompt_fallback"] for c in lessons
            ), lessons
        finally:
            cluster["prompts"].start()
            cluster["prompts"].wait_ready()
        await asyncio.sleep(5.5)  # the failure is remembered for 5 s, then the registry is asked
        _, events = await course(client, token)
        lessons = calls(events, LESSON)
        assert all(c["prompt_version"] != "default" and not c["prompt_fallback"] for c in lessons)
