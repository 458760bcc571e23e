"""Token budgets: usage is charged once per LLM call, shown to the user, and enforced."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from shared.contracts.llm import LLMCallCompleted, LLMCallCompletedPayload
from tests.support.client import (
    bearer,
    create_course,
    guest_token,
    publish_command,
    ready_course,
)
from tests.support.sse import read_events

pytestmark = pytest.mark.e2e


async def me(client: httpx.AsyncClient, token: str) -> dict:
    resp = await client.get("/v1/auth/me", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def used_after(client: httpx.AsyncClient, token: str, expected: int) -> int:
    """The budget's used tokens once they reach ``expected`` (or after 10 s)."""
    used = -1
    for _ in range(100):
        used = (await me(client, token))["budget"]["used_tokens"]
        if used >= expected:
            break
        await asyncio.sleep(0.1)
    return int(used)


async def test_a_course_is_charged_exactly_its_llm_tokens(cluster, db: asyncpg.Connection) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        fresh = (await me(client, token))["budget"]
        assert fresh["kind"] == "guest" and fresh["used_tokens"] == 0
        assert fresh["remaining_tokens"] == fresh["limit_tokens"] > 0

        accepted, _ = await ready_course(client, token)
        # every LLM call of the course's job, as the services announced them
        calls = await db.fetch(
            "SELECT body FROM gateway.events WHERE job_id = $1 AND event = 'llm.call_completed'",
            accepted["job_id"],
        )
        assert calls, "the course made no LLM call"
        spent = 0
        for row in calls:
            payload = json.loads(row["body"])["payload"]
            spent += payload["input_tokens"] + payload["output_tokens"]
        assert await used_after(client, token, spent) == spent
        budget = (await me(client, token))["budget"]
        assert budget["remaining_tokens"] == budget["limit_tokens"] - spent


async def test_a_redelivered_usage_event_is_not_billed_twice(
    cluster, infra: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        user_id = (await me(client, token))["user_id"]
        event = LLMCallCompleted(
            job_id=str(uuid.uuid4()),
            correlation_id="budget-test",
            user_id=user_id,
            payload=LLMCallCompletedPayload(
                service="content",
                task="write_lesson",
                prompt_name="content.write_lesson",
                prompt_version="default",
                model="offline/lectern",
                requested_model="offline/lectern",
                input_tokens=700,
                output_tokens=300,
                latency_ms=5,
                cost_usd=None,
                ttft_ms=None,
                status="ok",
                attempts=1,
                fallback_used=False,
            ),
        ).to_wire()
        await publish_command(
            infra["AMQP_URL"],
            event,
            routing_key="llm.call_completed",
            exchange_name="lectern.events",
            times=3,
        )
        assert await used_after(client, token, 1000) == 1000
        await asyncio.sleep(1.0)  # the other two copies have been consumed by now
        assert (await me(client, token))["budget"]["used_tokens"] == 1000


async def test_a_spent_budget_refuses_new_work_with_a_clear_error(
    cluster, db: asyncpg.Connection
) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        budget = (await me(client, token))["budget"]
        user_id = (await me(client, token))["user_id"]
        await db.execute(
            "UPDATE gateway.budgets SET tokens_used = $1 WHERE account = $2 AND period = $3",
            budget["limit_tokens"],
            f"user:{user_id}",
            budget["period"],
        )
        resp = await client.post(
            "/v1/courses",
            json={"topic": "Rust ownership", "level": "beginner", "duration_hours": 2},
            headers=bearer(token),
        )
        assert resp.status_code == 402, resp.text
        detail = resp.json()["detail"]
        assert "token budget spent" in detail and "guest" in detail and "Register" in detail
        assert (await me(client, token))["budget"]["remaining_tokens"] == 0
        # nothing was started for the refused request
        jobs = await db.fetchval("SELECT count(*) FROM gateway.jobs WHERE user_id = $1", user_id)
        assert jobs == 0

        metrics = (await client.get("/metrics")).text
        assert 'lectern_budget_rejections_total{budget="guest"}' in metrics

        # registering turns the guest's budget into a user's larger one, usage kept
        resp = await client.post(
            "/v1/auth/register",
            json={"email": f"b-{uuid.uuid4().hex[:8]}@example.org", "password": "long enough"},
            headers=bearer(token),
        )
        assert resp.status_code == 201, resp.text
        upgraded = (await me(client, resp.json()["access_token"]))["budget"]
        assert upgraded["kind"] == "user" and upgraded["used_tokens"] == budget["limit_tokens"]
        assert upgraded["remaining_tokens"] > 0


async def test_a_budget_spent_mid_course_stops_further_llm_calls(
    cluster, db: asyncpg.Connection
) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as client:
        token = await guest_token(client)
        budget = (await me(client, token))["budget"]
        user_id = (await me(client, token))["user_id"]
        # one token left: the request is accepted, its first LLM call spends the budget
        await db.execute(
            "UPDATE gateway.budgets SET tokens_used = $1 WHERE account = $2 AND period = $3",
            budget["limit_tokens"] - 1,
            f"user:{user_id}",
            budget["period"],
        )
        accepted = await create_course(client, token, auto_finalize=True)
        events = await read_events(
            client, accepted["events_url"], token, until={"course.ready", "job.failed"}
        )
        names = [e.event for e in events]
        assert "budget.exhausted" in names, names
        assert names[-1] == "job.failed", names
        assert "token budget spent" in events[-1].data["payload"]["reason"]
        # the calls made after the announcement are only those already under way
        calls = names.count("llm.call_completed")
        full_course = 2 + 3 * 4  # plan, finalise, then 3 per module (the default 4)
        assert 1 <= calls < full_course, names
        assert (await me(client, token))["budget"]["remaining_tokens"] == 0
