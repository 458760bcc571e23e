"""The planning chat against the real PostgreSQL and the offline model."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.planner import chat, service
from services.planner.store import chat_messages
from shared.contracts.planner import PlanCourse, PlanCoursePayload, RefinePlan, RefinePlanPayload
from shared.messaging import PermanentError
from tests.planner.conftest import envelope

pytestmark = pytest.mark.integration


async def test_refinements_see_the_chat_and_older_turns_get_summarised(deps: Any) -> None:
    course_id = str(uuid.uuid4())
    await service.plan_course(
        PlanCourse(
            **envelope(), payload=PlanCoursePayload(course_id=course_id, topic="Statistics")
        ),
        deps,
    )
    requests = [f"change number {i}" for i in range(1, 7)]
    for text in requests:
        cmd = RefinePlan(**envelope(), payload=RefinePlanPayload(course_id=course_id, text=text))
        assert await service.refine_plan(cmd, deps) is True
        assert await service.refine_plan(cmd, deps) is False  # a redelivery: nothing twice

    async with deps.sessionmaker() as session:
        turns = await chat.load_turns(session, course_id)
        summary = await chat.load_summary(session, course_id)
        rows = (
            await session.execute(
                select(chat_messages).where(chat_messages.c.course_id == course_id)
            )
        ).all()
    assert [t.seq for t in turns] == list(range(1, 14))
    assert [t.content for t in turns if t.role == "user"] == requests
    # the offline model appends to the latest plan's changes: it saw the previous plan
    assert all(f'"{text}"' in turns[-1].content for text in requests)
    assert all(r.model and r.output_tokens for r in rows if r.role == "assistant")
    assert summary is not None and summary.covers >= 5

    refine_calls = [c for c in deps.llm.calls if c["task"] == "refine_plan"]
    last_prompt = refine_calls[-1]["messages"]
    assert last_prompt[-1]["content"] == requests[-1]
    assert any(m["content"] == turns[-2].content for m in last_prompt)  # latest plan verbatim
    assert any("Summary of the earlier conversation" in m["content"] for m in last_prompt)
    assert len(last_prompt) <= 3 + chat.KEEP_VERBATIM + chat.SUMMARY_STEP
    assert len([c for c in deps.llm.calls if c["task"] == "summarise_chat"]) == 1
    # every prompt is the shipped template, rendered by name
    assert {(c["task"], c["prompt_name"], c["prompt_version"]) for c in deps.llm.calls} == {
        ("welcome_plan", "planner.welcome_plan", "default"),
        ("refine_plan", "planner.refine_plan", "default"),
        ("summarise_chat", "planner.summarise_chat", "default"),
    }


async def test_someone_elses_course_cannot_be_refined(deps: Any) -> None:
    course_id = str(uuid.uuid4())
    await service.plan_course(
        PlanCourse(**envelope(), payload=PlanCoursePayload(course_id=course_id, topic="Chess")),
        deps,
    )
    cmd = RefinePlan(
        **envelope(user_id="mallory"), payload=RefinePlanPayload(course_id=course_id, text="x")
    )
    with pytest.raises(PermanentError, match="not found"):
        await service.refine_plan(cmd, deps)
