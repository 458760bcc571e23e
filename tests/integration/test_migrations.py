"""Each service's migrations build exactly the tables its ``store.py`` declares.

Tables are written twice (the store for the code, a frozen migration for the
database); this test is what keeps the two from drifting apart.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import SERVICES

pytestmark = pytest.mark.integration


async def _diff(url: str, service: str) -> list[Any]:
    metadata = importlib.import_module(f"services.{service}.store").metadata
    engine = create_async_engine(url)

    def ours(name: str | None, type_: str, parents: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == service
        if type_ == "table":
            return parents.get("schema_name") == service and not str(name).startswith("alembic")
        return True

    def compare(conn: Any) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": ours,
                "compare_type": True,
                "compare_server_default": False,
            },
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_store(infra: dict[str, str], service: str) -> None:
    assert await _diff(infra["DATABASE_URL"], service) == []
