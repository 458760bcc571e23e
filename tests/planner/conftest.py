"""Planner fixtures: the real PostgreSQL and the offline model behind a recorder."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.planner import service
from shared.db import make_engine, make_sessionmaker
from shared.llm.prompts import DefaultPrompts
from shared.settings import get_settings
from tests.support.llm import Recording


@pytest.fixture
async def deps(infra: dict[str, str]) -> Any:
    engine = make_engine(get_settings("planner"))

    async def publish(_: Any) -> None:
        return None

    yield service.PlannerDeps(
        sessionmaker=make_sessionmaker(engine),
        llm=Recording("planner"),
        publish_chunk=publish,
        wake_relay=lambda: None,
        prompts=DefaultPrompts(),
    )
    await engine.dispose()


def envelope(**kw: Any) -> dict[str, Any]:
    job = str(uuid.uuid4())
    return {"job_id": job, "correlation_id": job, "tenant_id": "t", "user_id": "u", **kw}
