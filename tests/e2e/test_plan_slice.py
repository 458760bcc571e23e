"""The first slice, as a client sees it: HTTP in, SSE out, real processes."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx
import pytest

from tests.conftest import DATABASE_URL
from tests.support.client import PROFILE, create_course, guest_token
from tests.support.processes import Cluster
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


async def test_plan_streams_over_sse_and_resumes(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        accepted = await create_course(client, token)
        url = f"/v1/jobs/{accepted['job_id']}/events"

        events = await read_events(client, url, token)

        assert events[-1].event == "course.plan_proposed", [e.event for e in events]
        chunks = [e for e in events if e.event == "job.chunk"]
        assert len(chunks) >= 2, "the plan should stream in several chunks"
        assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
        proposed = events[-1].data["payload"]
        assert proposed["course_id"] == accepted["course_id"]
        streamed = "".join(c.data["payload"]["text"] for c in chunks)
        assert streamed == proposed["plan_markdown"]
        assert "Python asyncio" in proposed["plan_markdown"]
        assert all(e.data["correlation_id"] == accepted["job_id"] for e in events)

        # resume after the second event: exactly the rest, no repeats
        resumed = await read_events(client, url, token, last_event_id=events[1].id)
        assert [e.id for e in resumed] == [e.id for e in events[2:]]

        # the job's status followed its final event
        job = (
            await client.get(
                f"/v1/jobs/{accepted['job_id']}", headers={"Authorization": f"Bearer {token}"}
            )
        ).json()
        assert job["status"] == "completed"


async def test_bad_input_names_the_field(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        auth = {"Authorization": f"Bearer {token}"}
        resp = await client.post("/v1/courses", json={**PROFILE, "level": "expert"}, headers=auth)
        assert resp.status_code == 422
        assert ["body", "level"] in [d["loc"] for d in resp.json()["detail"]]

        resp = await client.post(
            "/v1/courses", json={**PROFILE, "duration_hours": -1}, headers=auth
        )
        assert resp.status_code == 422
        assert ["body", "duration_hours"] in [d["loc"] for d in resp.json()["detail"]]

        resp = await client.post("/v1/courses", json={"level": "beginner"}, headers=auth)
        assert resp.status_code == 422
        assert ["body", "topic"] in [d["loc"] for d in resp.json()["detail"]]

        resp = await client.post("/v1/courses", json={**PROFILE, "topik": "x"}, headers=auth)
        assert resp.status_code == 422
        assert ["body", "topik"] in [d["loc"] for d in resp.json()["detail"]]

        resp = await client.post("/v1/courses", json=PROFILE)
        assert resp.status_code == 401


async def test_unknown_and_foreign_jobs_are_404(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        alice, bob = await guest_token(client), await guest_token(client)
        resp = await client.get(
            "/v1/jobs/no-such-job/events", headers={"Authorization": f"Bearer {alice}"}
        )
        assert resp.status_code == 404
        assert "no-such-job" in resp.json()["detail"]

        accepted = await create_course(client, alice)
        for path in (f"/v1/jobs/{accepted['job_id']}", f"/v1/jobs/{accepted['job_id']}/events"):
            resp = await client.get(path, headers={"Authorization": f"Bearer {bob}"})
            assert resp.status_code == 404, path


async def test_every_llm_call_reaches_the_execution_log(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        token = await guest_token(client)
        accepted = await create_course(client, token)
        await read_events(client, f"/v1/jobs/{accepted['job_id']}/events", token)
    conn = await asyncpg.connect(DATABASE_URL.replace("+asyncpg", ""))
    try:
        for _ in range(50):
            rows = await conn.fetch(
                "SELECT task, prompt_name, status, output_tokens FROM prompts.executions "
                "WHERE job_id = $1",
                accepted["job_id"],
            )
            if rows:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["task"] == "welcome_plan"
    assert rows[0]["prompt_name"] == "planner.welcome_plan"
    assert rows[0]["status"] == "ok" and rows[0]["output_tokens"] > 0


async def test_metrics_and_asyncapi_are_served(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name in ("planner", "content", "assessment", "prompts"):
            svc = cluster[name]
            assert (await client.get(f"{svc.url}/healthz")).status_code == 200
            metrics = (await client.get(f"{svc.url}/metrics")).text
            assert "faststream_" in metrics or "python_info" in metrics
            doc = await client.get(f"{svc.url}/docs/asyncapi.json")
            assert doc.status_code == 200, name
        planner_doc = json.dumps(
            (await client.get(f"{cluster['planner'].url}/docs/asyncapi.json")).json()
        )
        assert "planner.plan_course" in planner_doc
        gw = await client.get(f"{cluster.gateway}/metrics")
        assert gw.status_code == 200
