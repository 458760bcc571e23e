"""Planner fixtures: the real PostgreSQL and the offline model behind a recorder."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.planner import service
from shared.db import make_engine, make_sessionmaker
from shared.settings import get_settings


class Recording:
    """The real LLM client, remembering every call's arguments."""

    def __init__(self) -> None:
        from shared.llm import LLMClient

        self.client = LLMClient(get_settings("planner"), service="planner")
        self.calls: list[dict[str, Any]] = []

    @property
    def models(self) -> list[str]:
        return self.client.models

    def estimate_cost(self, i: int, o: int) -> float | None:
        return self.client.estimate_cost(i, o)

    async def stream(self, **kw: Any) -> Any:
        self.calls.append(kw)
        return await self.client.stream(**kw)

    async def structured(self, **kw: Any) -> Any:
        self.calls.append(kw)
        return await self.client.structured(**kw)


@pytest.fixture
async def deps(infra: dict[str, str]) -> Any:
    engine = make_engine(get_settings("planner"))

    async def publish(_: Any) -> None:
        return None

    yield service.PlannerDeps(
        sessionmaker=make_sessionmaker(engine),
        llm=Recording(),
        publish_chunk=publish,
        wake_relay=lambda: None,
    )
    await engine.dispose()


def envelope(**kw: Any) -> dict[str, Any]:
    job = str(uuid.uuid4())
    return {"job_id": job, "correlation_id": job, "tenant_id": "t", "user_id": "u", **kw}
