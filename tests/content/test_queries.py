"""The RPC queries as registered on the runtime: owner only, 404 otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.content import handlers, service
from services.content.store import metadata
from shared.rpc import RpcError
from shared.runtime import Runtime
from shared.settings import LecternSettings
from tests.content.conftest import Harness, new_course_id, revise_cmd, write_cmd

pytestmark = pytest.mark.integration


@pytest.fixture
async def runtime(infra: dict[str, str]) -> AsyncIterator[Runtime]:
    """A content runtime with its handlers registered (not started: no broker needed)."""
    runtime = Runtime("content", metadata, LecternSettings(service_name="content"))
    handlers.register(runtime)
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


async def test_get_and_list_answer_the_owner_only(runtime: Runtime, harness: Harness) -> None:
    get_lesson = runtime.rpc.handlers["get_lesson"]
    list_lessons = runtime.rpc.handlers["list_lessons"]
    course_id = new_course_id()
    await service.write_lesson(write_cmd(course_id, order=1), harness.deps)
    await service.write_lesson(write_cmd(course_id, order=2), harness.deps)
    await service.revise_lesson(revise_cmd(course_id, order=2, feedback="Shorter"), harness.deps)

    latest = await get_lesson({"user_id": "u-1", "course_id": course_id, "order": 2})
    first = await get_lesson({"user_id": "u-1", "course_id": course_id, "order": 2, "version": 1})
    listed = await list_lessons({"user_id": "u-1", "course_id": course_id})

    assert (latest["version"], latest["feedback"], latest["order"]) == (2, "Shorter", 2)
    assert latest["markdown"] and latest["lesson_id"] == first["lesson_id"]
    assert [v["version"] for v in latest["versions"]] == [1, 2]
    assert [v["feedback"] for v in latest["versions"]] == [None, "Shorter"]
    assert isinstance(latest["versions"][0]["created_at"], str)
    assert (first["version"], first["feedback"]) == (1, None)
    assert [(x["order"], x["version"]) for x in listed["lessons"]] == [(1, 1), (2, 2)]

    with pytest.raises(RpcError) as missing:
        await get_lesson({"user_id": "u-2", "course_id": course_id, "order": 2})
    assert missing.value.status == 404
    with pytest.raises(RpcError) as no_version:
        await get_lesson({"user_id": "u-1", "course_id": course_id, "order": 2, "version": 3})
    assert no_version.value.status == 404
    assert (await list_lessons({"user_id": "u-2", "course_id": course_id}))["lessons"] == []


async def test_a_bad_query_is_a_400_naming_the_field(runtime: Runtime) -> None:
    with pytest.raises(RpcError) as bad:
        await runtime.rpc.handlers["get_lesson"]({"user_id": "u-1", "course_id": "c"})
    assert bad.value.status == 400
    assert "order" in bad.value.detail
