"""Course sources on the real PostgreSQL: ingestion of each format, replacement, deletion,
duplicates and limits, tenant isolation, and hybrid retrieval (the real local model)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.content import sources
from services.content.embeddings import LocalMiniLM
from services.content.retrieval import RRF_K, Retriever, rrf
from services.content.store import chunks, metadata, uploads
from services.content.store import sources as sources_table
from shared.contracts.base import Message
from shared.contracts.sources import DeleteSource, DeleteSourcePayload, IngestSource
from shared.contracts.sources import IngestSourcePayload as Ingest
from shared.messaging import PermanentError
from shared.outbox import outbox_table
from tests.support.pdf import make_pdf

pytestmark = pytest.mark.integration

NOTES = b"""# Asyncio notes

## The event loop

The event loop runs one task at a time and switches between tasks whenever a coroutine
awaits something that is not ready yet.

## Cancellation

Calling cancel() on a task raises CancelledError inside the coroutine at its next await;
the coroutine may catch it to clean up, but should re-raise it.

## Timeouts

asyncio.timeout() bounds how long a block may take: when the deadline passes, the block
is cancelled and TimeoutError is raised to the caller.
"""
HTML = b"""<html><body><h1>Sourdough</h1><h2>Starter</h2>
<p>Feed the starter equal weights of flour and water every twelve hours.</p>
<h2>Baking</h2><p>Bake the loaf in a preheated Dutch oven at 250 degrees.</p></body></html>"""
TEXT = b"""Glaciers

Glaciers form where more snow falls each winter than melts in summer.

Moraines

Moraines are ridges of rock debris that a glacier pushed or left behind."""
PDF = make_pdf(
    [
        ["Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."],
        ["Chlorophyll absorbs red and blue light and reflects green light."],
    ],
    bookmarks=[("Photosynthesis", 0), ("Chlorophyll", 1)],
)


class CountingEmbedder:
    """The real local model, counting the texts it embeds."""

    def __init__(self, model: LocalMiniLM) -> None:
        self.model = model
        self.name = model.name
        self.texts = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return await self.model.embed(texts)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> LocalMiniLM:
    return LocalMiniLM(Path(tmp_path_factory.mktemp("models")))


@pytest.fixture
def published() -> list[Message]:
    return []


@pytest.fixture
def deps(
    sessionmaker: async_sessionmaker[AsyncSession],
    local_model: LocalMiniLM,
    published: list[Message],
) -> sources.SourceDeps:
    async def publish(message: Message) -> None:
        published.append(message)

    return sources.SourceDeps(
        sessionmaker=sessionmaker,
        embedder=CountingEmbedder(local_model),
        publish=publish,
        wake_relay=lambda: None,
        max_bytes=200_000,
        max_per_course=3,
    )


@pytest.fixture
async def retriever(deps: sources.SourceDeps) -> AsyncIterator[Retriever]:
    yield Retriever(deps.sessionmaker, deps.embedder)


def ingest(
    course_id: str,
    data: bytes,
    filename: str = "notes.md",
    *,
    source_id: str | None = None,
    tenant: str = "acme",
    user: str | None = "u-1",
    **payload: Any,
) -> IngestSource:
    fields: dict[str, Any] = {"content_base64": base64.b64encode(data).decode()} | payload
    return IngestSource(
        job_id="job-src",
        correlation_id="corr-src",
        tenant_id=tenant,
        user_id=user,
        payload=Ingest(
            course_id=course_id,
            source_id=source_id or f"s-{uuid.uuid4()}",
            filename=filename,
            content_sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            **fields,
        ),
    )


def new_course() -> str:
    return f"c-{uuid.uuid4()}"


async def outbox(deps: sources.SourceDeps, course_id: str) -> list[Any]:
    table = outbox_table(metadata)
    async with deps.sessionmaker() as session:
        rows = await session.execute(
            select(table)
            .where(table.c.body["payload"]["course_id"].astext == course_id)
            .order_by(table.c.id)
        )
        return list(rows)


async def stored_chunks(deps: sources.SourceDeps, source_id: str) -> list[Any]:
    async with deps.sessionmaker() as session:
        rows = await session.execute(
            select(chunks, func.cardinality(chunks.c.embedding).label("dims"))
            .where(chunks.c.source_id == source_id)
            .order_by(chunks.c.ordinal)
        )
        return list(rows)


async def test_markdown_is_chunked_embedded_indexed_and_announced_once(
    deps: sources.SourceDeps, published: list[Message]
) -> None:
    course = new_course()
    cmd = ingest(course, NOTES)

    assert await sources.ingest_source(cmd, deps) is True
    assert await sources.ingest_source(cmd, deps) is False  # a redelivery does nothing

    rows = await stored_chunks(deps, cmd.payload.source_id)
    assert [r.section for r in rows] == [
        "Asyncio notes > The event loop",
        "Asyncio notes > Cancellation",
        "Asyncio notes > Timeouts",
    ]
    assert all(r.dims == 384 and r.tenant_id == "acme" and r.user_id == "u-1" for r in rows)
    assert "cancel" in str(rows[1].tsv) and "'timeout':" in str(rows[2].tsv)
    [event] = await outbox(deps, course)
    assert event.schema == "source.ingested.v1"
    assert event.body["payload"] | {"content_sha256": "-"} == {
        "course_id": course,
        "source_id": cmd.payload.source_id,
        "filename": "notes.md",
        "kind": "markdown",
        "revision": 1,
        "chunks": 3,
        "pages": None,
        "size_bytes": len(NOTES),
        "content_sha256": "-",
        "embedding_model": "local/all-MiniLM-L6-v2",
    }
    stages = [(m.payload.stage, m.payload.done, m.payload.total) for m in published]
    assert stages == [
        ("extracting", 0, 0),
        ("chunking", 0, 0),
        ("embedding", 0, 3),
        ("embedding", 3, 3),
        ("storing", 3, 3),
    ]
    assert {m.job_id for m in published} == {"job-src"}


@pytest.mark.parametrize(
    ("filename", "data", "kind", "sections", "pages"),
    [
        ("bread.html", HTML, "html", ["Sourdough > Starter", "Sourdough > Baking"], None),
        ("ice.txt", TEXT, "text", ["Glaciers", "Moraines"], None),
        ("plants.pdf", PDF, "pdf", ["Photosynthesis", "Chlorophyll"], 2),
    ],
)
async def test_each_format_is_ingested(
    deps: sources.SourceDeps,
    filename: str,
    data: bytes,
    kind: str,
    sections: list[str],
    pages: int | None,
) -> None:
    cmd = ingest(new_course(), data, filename)
    await sources.ingest_source(cmd, deps)
    rows = await stored_chunks(deps, cmd.payload.source_id)
    assert [r.section for r in rows] == sections
    assert [r.page for r in rows] == ([1, 2] if pages else [None, None])
    async with deps.sessionmaker() as session:
        row = (await session.execute(select(sources_table))).all()
        mine = next(r for r in row if r.source_id == cmd.payload.source_id)
    assert (mine.kind, mine.page_count, mine.chunk_count, mine.content) == (kind, pages, 2, data)


async def test_duplicates_limits_and_bad_files_are_refused_with_a_reason(
    deps: sources.SourceDeps,
) -> None:
    course = new_course()
    first = ingest(course, NOTES, "notes.md")
    await sources.ingest_source(first, deps)
    with pytest.raises(PermanentError, match=r"copy\.md is a duplicate: .* as notes\.md"):
        await sources.ingest_source(ingest(course, NOTES, "copy.md"), deps)
    await sources.ingest_source(ingest(course, HTML, "bread.html"), deps)
    await sources.ingest_source(ingest(course, TEXT, "ice.txt"), deps)
    with pytest.raises(PermanentError, match="already has 3 sources, the most allowed"):
        await sources.ingest_source(ingest(course, PDF, "plants.pdf"), deps)
    other = new_course()
    with pytest.raises(PermanentError, match="over the limit of 200000"):
        await sources.ingest_source(ingest(other, b"x" * 200_001, "big.txt"), deps)
    lying = ingest(other, NOTES)
    lying.payload.size_bytes += 1
    with pytest.raises(PermanentError, match="does not match"):
        await sources.ingest_source(lying, deps)
    with pytest.raises(PermanentError, match="unsupported file type"):
        await sources.ingest_source(ingest(other, b"PK\x03\x04", "slides.pptx"), deps)
    with pytest.raises(PermanentError, match="no text found"):
        await sources.ingest_source(ingest(other, make_pdf([[]]), "scan.pdf"), deps)


async def test_a_changed_source_replaces_its_chunks_and_an_unchanged_one_is_not_redone(
    deps: sources.SourceDeps, retriever: Retriever
) -> None:
    course = new_course()
    first = ingest(course, NOTES)
    source_id = first.payload.source_id
    await sources.ingest_source(first, deps)
    before = {r.chunk_id for r in await stored_chunks(deps, source_id)}
    hits = await retriever.search(course, "acme", "u-1", "how do I cancel a task?", k=1)
    assert hits[0].section.endswith("Cancellation")

    changed = NOTES.replace(b"## Cancellation", b"## Stopping tasks").replace(
        b"## Timeouts",
        b"## Deadlines\n\nasyncio.timeout_at() takes an absolute deadline.\n\n## Timeouts",
    )
    await sources.ingest_source(ingest(course, changed, source_id=source_id), deps)
    after = await stored_chunks(deps, source_id)
    assert before.isdisjoint({r.chunk_id for r in after})  # old chunks gone
    assert [r.section.split(" > ")[-1] for r in after] == [
        "The event loop",
        "Stopping tasks",
        "Deadlines",
        "Timeouts",
    ]
    hits = await retriever.search(course, "acme", "u-1", "how do I cancel a task?", k=1)
    assert hits[0].section.endswith("Stopping tasks")  # the cache saw the new revision

    embedded = deps.embedder.texts  # type: ignore[attr-defined]
    again = ingest(course, changed, source_id=source_id)
    await sources.ingest_source(again, deps)
    assert deps.embedder.texts == embedded  # type: ignore[attr-defined]
    events = [e.body["payload"]["revision"] for e in await outbox(deps, course)]
    assert events == [1, 2, 2]


async def test_deleting_a_source_removes_its_chunks_from_retrieval(
    deps: sources.SourceDeps, retriever: Retriever
) -> None:
    course = new_course()
    cmd = ingest(course, NOTES)
    await sources.ingest_source(cmd, deps)
    assert await retriever.search(course, "acme", "u-1", "event loop")

    def delete(tenant: str = "acme", user: str | None = "u-1") -> DeleteSource:
        return DeleteSource(
            job_id="j",
            correlation_id="j",
            tenant_id=tenant,
            user_id=user,
            payload=DeleteSourcePayload(course_id=course, source_id=cmd.payload.source_id),
        )

    assert await sources.delete_source(delete(user="u-2"), deps.sessionmaker) is None
    assert await sources.delete_source(delete(tenant="other"), deps.sessionmaker) is None
    gone = await sources.delete_source(delete(), deps.sessionmaker)
    assert gone == {"source_id": cmd.payload.source_id, "filename": "notes.md"}
    assert await sources.delete_source(delete(), deps.sessionmaker) is None
    assert await stored_chunks(deps, cmd.payload.source_id) == []
    assert await retriever.search(course, "acme", "u-1", "event loop") == []
    assert [e.schema for e in await outbox(deps, course)] == [
        "source.ingested.v1",
        "source.deleted.v1",
    ]


async def test_sources_are_never_visible_to_another_tenant_or_user(
    deps: sources.SourceDeps, retriever: Retriever
) -> None:
    course = new_course()
    mine = ingest(course, NOTES)
    await sources.ingest_source(mine, deps)
    # the same course id under someone else: their own, separate sources
    theirs = ingest(course, HTML, "bread.html", tenant="globex", user="u-9")
    await sources.ingest_source(theirs, deps)

    for tenant, user in (("globex", "u-9"), ("acme", "u-2"), ("acme", None)):
        found = await retriever.search(course, tenant, user, "cancel a task with CancelledError")
        assert all(p.source_id != mine.payload.source_id for p in found), (tenant, user)
    found = await retriever.search(course, "acme", "u-1", "flour and water for the starter")
    assert {p.source_id for p in found} == {mine.payload.source_id}
    async with deps.sessionmaker() as session:
        listed = await sources.list_sources(session, course, "globex", "u-9")
        assert [s["source_id"] for s in listed] == [theirs.payload.source_id]
        assert await sources.list_sources(session, course, "acme", "u-2") == []
    # replacing someone else's source is as unknown as a missing one
    hijack = ingest(course, TEXT, "ice.txt", source_id=mine.payload.source_id, user="u-2")
    with pytest.raises(PermanentError, match="not found"):
        await sources.ingest_source(hijack, deps)


async def test_a_large_file_arrives_in_staged_parts(deps: sources.SourceDeps) -> None:
    course = new_course()
    upload_id = f"up-{uuid.uuid4()}"
    for part, piece in enumerate((PDF[:500], PDF[500:])):
        await sources.stage_upload(deps.sessionmaker, upload_id, part, "acme", "u-1", piece)
    data = {"upload_id": upload_id, "content_base64": None}
    stranger = ingest(course, PDF, "plants.pdf", tenant="globex", **data)
    with pytest.raises(PermanentError, match="not found"):
        await sources.ingest_source(stranger, deps)
    cmd = ingest(course, PDF, "plants.pdf", **data)
    await sources.ingest_source(cmd, deps)
    assert len(await stored_chunks(deps, cmd.payload.source_id)) == 2
    async with deps.sessionmaker() as session:
        left = await session.scalar(select(func.count()).where(uploads.c.upload_id == upload_id))
    assert left == 0


async def test_hybrid_fuses_both_rankings(deps: sources.SourceDeps, retriever: Retriever) -> None:
    course = new_course()
    await sources.ingest_source(ingest(course, NOTES), deps)
    await sources.ingest_source(ingest(course, TEXT, "ice.txt"), deps)
    # words only full text finds, meaning only vectors find
    by_words = await retriever.search(course, "acme", "u-1", "TimeoutError", k=1, mode="fts")
    assert by_words[0].section.endswith("Timeouts") and by_words[0].vector_rank is None
    by_meaning = await retriever.search(
        course, "acme", "u-1", "how are frozen rivers of ice created", k=1, mode="vector"
    )
    assert by_meaning[0].section == "Glaciers" and by_meaning[0].fts_rank is None
    hybrid = await retriever.search(
        course, "acme", "u-1", "what does a coroutine get when its task is cancelled?", k=5
    )
    assert hybrid[0].section.endswith("Cancellation")
    assert (hybrid[0].vector_rank, hybrid[0].fts_rank) == (1, 1)
    for p in hybrid:  # each score is the reciprocal rank fusion of the two rankings
        expected = sum(1 / (RRF_K + r) for r in (p.vector_rank, p.fts_rank) if r is not None)
        assert p.score == pytest.approx(expected, abs=1e-6)
    assert [p.score for p in hybrid] == sorted((p.score for p in hybrid), reverse=True)


def test_rrf_rewards_agreement() -> None:
    fused = rrf([["a", "b", "c"], ["b", "d", "e"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "d", "c", "e"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
