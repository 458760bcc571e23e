"""Lessons of a course with sources are written from retrieved passages and cite them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.content import service, sources
from services.content.embeddings import LocalMiniLM
from services.content.retrieval import Retriever
from shared.citations import resolve
from tests.content.conftest import FakeLLM, Harness, new_course_id, revise_cmd, write_cmd
from tests.content.test_sources import NOTES, ingest
from tests.support.llm import Recording

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> LocalMiniLM:
    return LocalMiniLM(Path(tmp_path_factory.mktemp("models")))


async def add_sources(harness: Harness, model: LocalMiniLM, course_id: str, **owner: Any) -> None:
    async def publish(_: Any) -> None:
        return None

    deps = sources.SourceDeps(
        sessionmaker=harness.sessionmaker,
        embedder=model,
        publish=publish,
        wake_relay=lambda: None,
        max_bytes=1_000_000,
        max_per_course=5,
    )
    await sources.ingest_source(ingest(course_id, NOTES, **owner), deps)


def grounded(harness: Harness, model: LocalMiniLM, llm: Any) -> service.ContentDeps:
    base = harness.deps
    fields = {**vars(base), "llm": llm, "retriever": Retriever(harness.sessionmaker, model)}
    return service.ContentDeps(**fields)


async def test_a_lesson_is_written_from_the_courses_passages_and_cites_them(
    harness: Harness, local_model: LocalMiniLM
) -> None:
    course_id = new_course_id()
    await add_sources(harness, local_model, course_id, tenant="default", user="u-1")
    llm = Recording("content")
    deps = grounded(harness, local_model, llm)

    assert await service.write_lesson(write_cmd(course_id, order=2), deps)

    [call] = llm.calls
    assert call["task"] == "write_grounded_lesson"
    user = call["messages"][-1]["content"]
    assert "=== SOURCES ===\n[S1]\nsource: notes.md — Asyncio notes > " in user
    [row] = await harness.lessons(course_id)
    cited = re.findall(r"\[(S\d+)\]", row.markdown)
    assert cited and {c["marker"] for c in row.citations} == set(cited)
    for citation in row.citations:
        assert citation["filename"] == "notes.md" and citation["section"].startswith("Asyncio")
        assert citation["quote"].split()[0] in NOTES.decode()
    assert "## Beyond your sources" in row.markdown
    beyond = row.markdown.split("## Beyond your sources", 1)[1].split("##", 1)[0]
    assert "[S" not in beyond  # what the sources do not say is not attributed to them
    [event] = [e for e in await harness.outbox(course_id) if e.schema == "lesson.written.v1"]
    assert event.body["payload"]["citations"] == row.citations

    # a revision keeps the citations whose markers it keeps
    assert await service.revise_lesson(revise_cmd(course_id, order=2), deps)
    latest = (await harness.lessons(course_id))[-1]
    assert latest.version == 2 and latest.citations == row.citations


async def test_a_course_without_sources_gets_the_plain_lesson(
    harness: Harness, local_model: LocalMiniLM
) -> None:
    course_id = new_course_id()
    # someone else's sources for the same course id do not count
    await add_sources(harness, local_model, course_id, tenant="default", user="u-2")
    llm = FakeLLM("# Lesson\n\nText [S1].\n")
    deps = grounded(harness, local_model, llm)
    await service.write_lesson(write_cmd(course_id), deps)
    assert llm.calls[0]["task"] == "write_lesson"
    [row] = await harness.lessons(course_id)
    assert row.citations is None and row.markdown == llm.text  # nothing to resolve against


def test_markers_of_passages_not_given_are_dropped_and_code_is_left_alone() -> None:
    passages = [
        {"chunk_id": "c1", "source_id": "s", "filename": "a.md", "section": "A", "text": "x"},
        {"chunk_id": "c2", "source_id": "s", "filename": "a.pdf", "page": 3, "text": "y"},
    ]
    text = "One [S2]. Two [S7].\n\n```python\nrow = table[S1]\n```\nThree [S2][S1].\n"
    out, citations = resolve(text, passages)
    assert out == "One [S2]. Two.\n\n```python\nrow = table[S1]\n```\nThree [S2][S1].\n"
    assert [(c["marker"], c["chunk_id"], c["page"]) for c in citations] == [
        ("S2", "c2", 3),
        ("S1", "c1", None),
    ]
