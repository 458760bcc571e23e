"""write_lesson and revise_lesson against the real PostgreSQL, with a fake LLM."""

from __future__ import annotations

import asyncio

import pytest

from services.content import service
from shared.messaging import PermanentError
from tests.content.conftest import Harness, new_course_id, revise_cmd, write_cmd

pytestmark = pytest.mark.integration


async def test_lesson_is_stored_streamed_and_announced_once(harness: Harness) -> None:
    course_id = new_course_id()
    cmd = write_cmd(course_id)

    assert await service.write_lesson(cmd, harness.deps) is True

    [row] = await harness.lessons(course_id)
    assert (row.version, row.position, row.title) == (1, 2, "Coroutines and the event loop")
    assert row.lesson_id == service.lesson_id_for(course_id, cmd.payload.module.module_id)
    assert row.markdown == harness.llm.text
    assert (row.user_id, row.feedback, row.model, row.latency_ms) == ("u-1", None, "fake/model", 12)
    [event] = await harness.outbox(course_id)
    assert event.schema == "lesson.written.v1"
    assert event.message_id == service.derived_id(cmd.message_id, "lesson_written")
    assert event.body["payload"]["lesson_id"] == row.lesson_id
    assert event.body["payload"]["version"] == 1
    assert event.body["causation_id"] == cmd.message_id
    assert "".join(c.payload.text for c in harness.chunks) == harness.llm.text
    assert {c.payload.step for c in harness.chunks} == {"lesson:2"}
    assert harness.wakes == 1
    # the prompt carries the module, the outline and the learner
    [call] = harness.llm.calls
    system, user = (m["content"] for m in call["messages"])
    assert "intermediate" in system and "mermaid" in system and "Knowledge check" in system
    assert "title: Coroutines and the event loop" in user
    assert "Tasks and cancellation" in user and "Write a concurrent web scraper" in user


async def test_redelivered_command_generates_and_stores_once(harness: Harness) -> None:
    course_id = new_course_id()
    cmd = write_cmd(course_id)

    assert await service.write_lesson(cmd, harness.deps) is True
    assert await service.write_lesson(cmd, harness.deps, delivery=1) is False
    # two deliveries at once: one works, the other waits for it and skips
    other = write_cmd(course_id, order=3)
    done = await asyncio.gather(
        service.write_lesson(other, harness.deps), service.write_lesson(other, harness.deps)
    )

    assert sorted(done) == [False, True]
    assert len(harness.llm.calls) == 2  # one per command
    assert [(r.position, r.version) for r in await harness.lessons(course_id)] == [(2, 1), (3, 1)]
    assert len(await harness.outbox(course_id)) == 2


async def test_second_command_for_the_module_reannounces_without_a_second_v1(
    harness: Harness,
) -> None:
    course_id = new_course_id()
    first, second = write_cmd(course_id), write_cmd(course_id)
    assert first.message_id != second.message_id

    await service.write_lesson(first, harness.deps)
    assert await service.write_lesson(second, harness.deps) is True

    assert len(harness.llm.calls) == 1
    assert len(await harness.lessons(course_id)) == 1
    events = await harness.outbox(course_id)
    assert [e.message_id for e in events] == [
        service.derived_id(first.message_id, "lesson_written"),
        service.derived_id(second.message_id, "lesson_written"),
    ]
    assert events[0].body["payload"] == events[1].body["payload"]


async def test_write_over_another_users_lesson_is_permanent(harness: Harness) -> None:
    course_id = new_course_id()
    await service.write_lesson(write_cmd(course_id), harness.deps)

    with pytest.raises(PermanentError, match="another user"):
        await service.write_lesson(write_cmd(course_id, user_id="u-2"), harness.deps)


async def test_revise_keeps_v1_and_adds_v2(harness: Harness) -> None:
    course_id = new_course_id()
    await service.write_lesson(write_cmd(course_id), harness.deps)
    harness.llm.text = "# Lesson\n\nMore examples now.\n"
    cmd = revise_cmd(course_id, feedback="More examples, less jargon")

    assert await service.revise_lesson(cmd, harness.deps) is True
    assert await service.revise_lesson(cmd, harness.deps, delivery=1) is False

    v1, v2 = await harness.lessons(course_id)
    assert (v1.version, v1.feedback, v1.markdown) == (
        1,
        None,
        "# Lesson\n\nSome text.\n\n## Knowledge check\n",
    )
    assert (v2.version, v2.feedback, v2.markdown) == (
        2,
        "More examples, less jargon",
        harness.llm.text,
    )
    assert v2.lesson_id == v1.lesson_id
    written, revised = await harness.outbox(course_id)
    assert written.schema == "lesson.written.v1"
    assert revised.schema == "lesson.revised.v1"
    assert revised.message_id == service.derived_id(cmd.message_id, "lesson_revised")
    payload = revised.body["payload"]
    assert (payload["version"], payload["previous_version"]) == (2, 1)
    assert payload["feedback"] == "More examples, less jargon"
    assert payload["markdown"] == harness.llm.text
    # the revision sees the brief, the current lesson and then the feedback
    messages = harness.llm.calls[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == v1.markdown
    assert messages[3]["content"] == "More examples, less jargon"
    assert {c.payload.step for c in harness.chunks} == {"lesson:2", "revise:2"}
    assert len(harness.llm.calls) == 2


async def test_revise_by_another_user_or_of_a_missing_lesson_is_permanent(
    harness: Harness,
) -> None:
    course_id = new_course_id()
    await service.write_lesson(write_cmd(course_id), harness.deps)

    with pytest.raises(PermanentError, match=f"no lesson 2 in course {course_id}"):
        await service.revise_lesson(revise_cmd(course_id, user_id="u-2"), harness.deps)
    with pytest.raises(PermanentError, match=f"no lesson 5 in course {course_id}"):
        await service.revise_lesson(revise_cmd(course_id, order=5), harness.deps)

    assert len(harness.llm.calls) == 1
    assert len(await harness.lessons(course_id)) == 1


async def test_concurrent_revisions_do_not_overwrite_each_other(harness: Harness) -> None:
    course_id = new_course_id()
    await service.write_lesson(write_cmd(course_id), harness.deps)
    both_generating = asyncio.Barrier(2)
    stream = harness.llm.stream

    async def stream_together(**kw: object) -> object:
        await both_generating.wait()  # both revise version 1
        return await stream(**kw)

    harness.llm.stream = stream_together
    results = await asyncio.gather(
        service.revise_lesson(revise_cmd(course_id, feedback="A"), harness.deps),
        service.revise_lesson(revise_cmd(course_id, feedback="B"), harness.deps),
        return_exceptions=True,
    )

    assert sum(r is True for r in results) == 1
    [lost] = [r for r in results if isinstance(r, Exception)]
    assert isinstance(lost, service.LessonChangedError)  # retryable: revises version 2 next
    assert [r.version for r in await harness.lessons(course_id)] == [1, 2]
