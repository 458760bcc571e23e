"""Prompt registry fixtures: the real PostgreSQL, a small library of templates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.prompts.store import metadata
from shared.db import make_engine, make_sessionmaker
from shared.llm.templates import NamedTemplate
from shared.outbox import outbox_table
from shared.settings import get_settings


@pytest.fixture
async def sm(infra: dict[str, str]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(get_settings("prompts"))
    yield make_sessionmaker(engine)
    await engine.dispose()


def template(name: str, system: str = "You teach {topic}.", **extra: Any) -> NamedTemplate:
    """A small template named ``name`` (unique per test with :func:`unique`)."""
    return NamedTemplate.model_validate(
        {
            "name": name,
            "task": "welcome_plan",
            "description": "test template",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "{brief}"},
            ],
            "variables": {"topic": {"type": "string"}, "brief": {"type": "string"}},
            **extra,
        }
    )


def unique(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def activations(sm: Any, name: str) -> list[dict[str, Any]]:
    """Payloads of the prompt.activated events about ``name`` in the outbox, in order."""
    table = outbox_table(metadata)
    async with sm() as session:
        rows = await session.execute(
            select(table.c.body)
            .where(table.c.schema == "prompt.activated.v1")
            .where(table.c.body["payload"]["name"].astext == name)
            .order_by(table.c.id)
        )
        return [r.body["payload"] for r in rows]
