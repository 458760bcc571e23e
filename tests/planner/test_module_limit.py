"""A finalised plan may have at most LECTERN_MAX_MODULES modules; more is refused clearly."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.planner import finalise, service
from services.planner.store import modules
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    PlanCourse,
    PlanCoursePayload,
)
from shared.messaging import PermanentError
from shared.settings import LecternSettings
from tests.planner.conftest import envelope
from tests.planner.test_course_process import outbox, status

pytestmark = pytest.mark.integration


async def planned_course(deps: Any) -> str:
    course_id = str(uuid.uuid4())
    plan = PlanCourse(
        **envelope(), payload=PlanCoursePayload(course_id=course_id, topic="Go", duration_hours=6)
    )
    await service.plan_course(plan, deps)
    return course_id


async def test_a_plan_with_more_modules_than_allowed_is_refused_and_stays_in_planning(
    deps: Any,
) -> None:
    course_id = await planned_course(deps)
    finalize = FinalizeCourse(**envelope(), payload=FinalizeCoursePayload(course_id=course_id))
    with pytest.raises(PermanentError) as refused:
        await finalise.finalize_course(finalize, deps, max_modules=2)
    reason = str(refused.value)
    assert "3 modules" in reason and "at most 2" in reason and "LECTERN_MAX_MODULES" in reason
    assert await status(deps, course_id) == "planning"  # the learner can still refine it
    assert await outbox(deps, course_id) == ["course.plan_proposed.v1"]  # no lesson asked for
    async with deps.sessionmaker() as session:
        stored = await session.execute(select(modules).where(modules.c.course_id == course_id))
        assert stored.first() is None

    # within the limit the same plan is finalised
    again = FinalizeCourse(**envelope(), payload=FinalizeCoursePayload(course_id=course_id))
    assert await finalise.finalize_course(again, deps, max_modules=3) is True
    assert await status(deps, course_id) == "generating"


def test_the_limit_is_a_setting_capped_by_the_draft_schema() -> None:
    assert LecternSettings().max_modules == 30
    assert LecternSettings(LECTERN_MAX_MODULES="12").max_modules == 12
    with pytest.raises(ValueError, match="less than or equal to 30"):
        LecternSettings(LECTERN_MAX_MODULES="31")
    assert finalise.CourseDraft.model_fields["modules"].metadata[-1].max_length == 30
