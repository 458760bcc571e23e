"""Course sources: ingest (extract, chunk, embed, store), replace, delete, list.

Ingestion runs under a :class:`WorkLease` like every costly command; progress goes out
as ephemeral ``source.progress`` events, and the chunks, the source row and
``source.ingested`` commit in one transaction. A source belongs to its course's owner
(tenant and user): every read and change is filtered on them, and anyone else's
source is reported as missing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import REGCONFIG, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.chunking import Chunk, chunk_blocks
from services.content.embeddings import Embedder
from services.content.extraction import detect_kind, extract
from services.content.store import chunks, metadata, sources, uploads
from shared.contracts.base import Message
from shared.contracts.sources import (
    DeleteSource,
    IngestSource,
    SourceDeleted,
    SourceDeletedPayload,
    SourceIngested,
    SourceIngestedPayload,
    SourceProgress,
    SourceProgressPayload,
)
from shared.db import WorkLease, claim_message
from shared.ids import derived_id
from shared.messaging import PermanentError
from shared.outbox import enqueue

log = logging.getLogger("lectern.content.sources")

INGEST_CONSUMER = "content.ingest_source"
DELETE_CONSUMER = "content.delete_source"
EMBED_BATCH = 32
# full-text configurations by language; anything else is indexed without stemming
TEXT_SEARCH = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "ru": "russian", "sv": "swedish", "da": "danish",
    "fi": "finnish", "no": "norwegian", "hu": "hungarian", "ro": "romanian", "tr": "turkish",
}  # fmt: skip


_JOINED = re.compile(r"(?<=[A-Za-z_])[._](?=[A-Za-z_])")


def searchable(text: str) -> str:
    """Text as the full-text index sees it: dotted and snake_case names split into words
    (PostgreSQL's parser keeps ``asyncio.wait_for`` as one token, so ``wait_for`` in a
    question would not match it). Queries go through the same function."""
    return _JOINED.sub(" ", text)


def text_search_config(language: str) -> str:
    """PostgreSQL text search configuration for a language code (``en-GB`` → english)."""
    return TEXT_SEARCH.get(language.split("-", 1)[0].lower(), "simple")


@dataclass
class SourceDeps:
    """What ingestion needs: the database, the embedder, progress, the relay, limits."""

    sessionmaker: Any
    embedder: Embedder
    publish: Callable[[Message], Awaitable[Any]]
    wake_relay: Callable[[], None]
    max_bytes: int
    max_per_course: int


def owned(table: Any, course_id: str, tenant_id: str, user_id: str | None) -> Any:
    """The filter on a course's rows of its owner (``user_id`` None: the tenant's own)."""
    user = table.c.user_id.is_(None) if user_id is None else table.c.user_id == user_id
    return (table.c.course_id == course_id) & (table.c.tenant_id == tenant_id) & user


async def _progress(
    deps: SourceDeps, cmd: IngestSource, stage: str, done: int = 0, total: int = 0
) -> None:
    p = cmd.payload
    event = cmd.follow(
        SourceProgress,
        SourceProgressPayload(
            course_id=p.course_id,
            source_id=p.source_id,
            filename=p.filename,
            stage=stage,  # type: ignore[arg-type]
            done=done,
            total=total,
        ),
        message_id=derived_id(cmd.message_id, "progress", stage, str(done)),
    )
    try:
        await deps.publish(event)
    except Exception:  # progress is a courtesy: never fail ingestion over it
        log.warning("could not publish source.progress", exc_info=True)


async def _file_bytes(session: AsyncSession, cmd: IngestSource) -> bytes:
    """The file: inline in the command, or its staged parts (the uploader's own)."""
    p = cmd.payload
    if p.content_base64 is not None:
        try:
            return base64.b64decode(p.content_base64, validate=True)
        except ValueError as exc:
            raise PermanentError(f"{p.filename}: content_base64 is not valid base64") from exc
    rows = await session.execute(
        select(uploads.c.data)
        .where(uploads.c.upload_id == p.upload_id, uploads.c.tenant_id == cmd.tenant_id)
        .order_by(uploads.c.part)
    )
    parts = [r.data for r in rows]
    if not parts:
        raise PermanentError(f"{p.filename}: upload {p.upload_id} not found (stage it first)")
    return b"".join(parts)


async def _check(session: AsyncSession, cmd: IngestSource, deps: SourceDeps) -> Any:
    """The existing source this command replaces (or None); PermanentError when it may not."""
    p = cmd.payload
    existing = (
        await session.execute(select(sources).where(sources.c.source_id == p.source_id))
    ).first()
    if existing is not None and (
        existing.course_id != p.course_id
        or existing.tenant_id != cmd.tenant_id
        or existing.user_id != cmd.user_id
    ):
        raise PermanentError(f"source {p.source_id} not found")
    twin = (
        await session.execute(
            select(sources.c.source_id, sources.c.filename).where(
                sources.c.tenant_id == cmd.tenant_id,
                sources.c.course_id == p.course_id,
                sources.c.content_sha256 == p.content_sha256,
                sources.c.source_id != p.source_id,
            )
        )
    ).first()
    if twin is not None:
        raise PermanentError(
            f"{p.filename} is a duplicate: the course already has this file as "
            f"{twin.filename} (source {twin.source_id})"
        )
    if existing is None:
        count = await session.scalar(
            select(func.count()).where(owned(sources, p.course_id, cmd.tenant_id, cmd.user_id))
        )
        if (count or 0) >= deps.max_per_course:
            raise PermanentError(
                f"course {p.course_id} already has {count} sources, the most allowed "
                f"({deps.max_per_course}): delete one first"
            )
    return existing


def _verify(data: bytes, cmd: IngestSource, max_bytes: int) -> None:
    p = cmd.payload
    if len(data) > max_bytes:
        raise PermanentError(f"{p.filename} is {len(data)} bytes, over the limit of {max_bytes}")
    if len(data) != p.size_bytes or hashlib.sha256(data).hexdigest() != p.content_sha256:
        raise PermanentError(f"{p.filename}: the content does not match size_bytes/content_sha256")


async def ingest_source(cmd: IngestSource, deps: SourceDeps) -> bool:
    """Extract, chunk, embed and store a source (replacing its chunks if it exists).

    Returns False when the command was already handled (a redelivery). Sending the
    same file again for the same source re-announces it without embedding again.
    """
    p = cmd.payload
    async with WorkLease(deps.sessionmaker, metadata, INGEST_CONSUMER, cmd.message_id) as ours:
        if not ours:
            return False
        await _progress(deps, cmd, "extracting")
        async with deps.sessionmaker() as session:
            data = await _file_bytes(session, cmd)
            _verify(data, cmd, deps.max_bytes)
            existing = await _check(session, cmd, deps)
        if existing is not None and existing.content_sha256 == p.content_sha256:
            await _announce_unchanged(cmd, existing, deps)
        else:
            kind = detect_kind(p.filename, p.media_type, data[:8])
            blocks, pages = await asyncio.to_thread(extract, data, kind, p.filename)
            await _progress(deps, cmd, "chunking")
            pieces = chunk_blocks(blocks)
            if not pieces:
                raise PermanentError(
                    f"{p.filename}: no text found"
                    + (" (a scanned PDF needs OCR first)" if kind == "pdf" else "")
                )
            vectors = await _embed(cmd, deps, pieces)
            await _progress(deps, cmd, "storing", len(pieces), len(pieces))
            await _store(cmd, deps, data, kind, pages, pieces, vectors, existing)
    deps.wake_relay()
    return True


async def _embed(cmd: IngestSource, deps: SourceDeps, pieces: list[Chunk]) -> list[list[float]]:
    total = len(pieces)
    await _progress(deps, cmd, "embedding", 0, total)
    rows: list[list[float]] = []
    for start in range(0, total, EMBED_BATCH):
        batch = pieces[start : start + EMBED_BATCH]
        vectors = await deps.embedder.embed([c.embedding_text() for c in batch])
        rows += [[float(x) for x in v] for v in vectors]
        await _progress(deps, cmd, "embedding", len(rows), total)
    return rows


async def _store(
    cmd: IngestSource,
    deps: SourceDeps,
    data: bytes,
    kind: str,
    pages: int | None,
    pieces: list[Chunk],
    vectors: list[list[float]],
    existing: Any,
) -> None:
    p = cmd.payload
    revision = 1 if existing is None else existing.revision + 1
    config = text_search_config(p.language)
    values = {
        "course_id": p.course_id,
        "tenant_id": cmd.tenant_id,
        "user_id": cmd.user_id,
        "filename": p.filename,
        "kind": kind,
        "content_sha256": p.content_sha256,
        "size_bytes": len(data),
        "content": data,
        "language": p.language,
        "revision": revision,
        "chunk_count": len(pieces),
        "page_count": pages,
        "embedding_model": deps.embedder.name,
    }
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, INGEST_CONSUMER, cmd.message_id):
            return
        if existing is None:
            await session.execute(insert(sources).values(source_id=p.source_id, **values))
        else:
            changed = await session.execute(
                update(sources)
                .where(sources.c.source_id == p.source_id, sources.c.revision == existing.revision)
                .values(**values, updated_at=func.now())
                .returning(sources.c.source_id)
            )
            if changed.first() is None:  # replaced meanwhile: retry on top of that one
                raise RuntimeError(f"source {p.source_id} changed during ingestion; retrying")
            await session.execute(delete(chunks).where(chunks.c.source_id == p.source_id))
        await session.execute(_chunk_insert(), _chunk_rows(cmd, config, revision, pieces, vectors))
        if p.upload_id is not None:
            await session.execute(delete(uploads).where(uploads.c.upload_id == p.upload_id))
        await enqueue(session, metadata, _ingested(cmd, kind, revision, len(pieces), pages, deps))


def _chunk_insert() -> Any:
    """INSERT of one chunk, its tsvector built in SQL: heading weight A, text weight B."""
    config = bindparam("ts_config", type_=REGCONFIG)
    tsv = func.setweight(func.to_tsvector(config, bindparam("ts_section")), literal_column("'A'"))
    tsv = tsv.op("||")(
        func.setweight(func.to_tsvector(config, bindparam("ts_text")), literal_column("'B'"))
    )
    return insert(chunks).values(tsv=tsv)


def _chunk_rows(
    cmd: IngestSource, config: str, revision: int, pieces: list[Chunk], vectors: list[list[float]]
) -> list[dict[str, Any]]:
    p = cmd.payload
    return [
        {
            "chunk_id": derived_id(p.source_id, str(revision), str(c.ordinal)),
            "source_id": p.source_id,
            "course_id": p.course_id,
            "tenant_id": cmd.tenant_id,
            "user_id": cmd.user_id,
            "ordinal": c.ordinal,
            "section": c.section,
            "page": c.page,
            "text": c.text,
            "embedding": vector,
            "ts_config": config,
            "ts_section": searchable(c.section),
            "ts_text": searchable(c.text),
        }
        for c, vector in zip(pieces, vectors, strict=True)
    ]


def _ingested(
    cmd: IngestSource, kind: str, revision: int, count: int, pages: int | None, deps: SourceDeps
) -> Message:
    p = cmd.payload
    return cmd.follow(
        SourceIngested,
        SourceIngestedPayload(
            course_id=p.course_id,
            source_id=p.source_id,
            filename=p.filename,
            kind=kind,  # type: ignore[arg-type]
            revision=revision,
            chunks=count,
            pages=pages,
            size_bytes=p.size_bytes,
            content_sha256=p.content_sha256,
            embedding_model=deps.embedder.name,
        ),
        message_id=derived_id(cmd.message_id, "source_ingested"),
    )


async def _announce_unchanged(cmd: IngestSource, existing: Any, deps: SourceDeps) -> None:
    """The same file again: nothing to redo, but whoever sent it hears back."""
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, INGEST_CONSUMER, cmd.message_id):
            return
        event = _ingested(
            cmd,
            existing.kind,
            existing.revision,
            existing.chunk_count,
            existing.page_count,
            deps,
        )
        await enqueue(session, metadata, event)
        if cmd.payload.upload_id is not None:
            await session.execute(
                delete(uploads).where(uploads.c.upload_id == cmd.payload.upload_id)
            )


async def delete_source(cmd: DeleteSource, sessionmaker: Any) -> dict[str, Any] | None:
    """Delete the owner's source and its chunks; announce ``source.deleted``.

    Returns the deleted source (id, file name), or None when there is no such source
    of theirs (or it was already deleted).
    """
    p = cmd.payload
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, DELETE_CONSUMER, cmd.message_id):
            return None
        gone = (
            await session.execute(
                delete(sources)
                .where(
                    sources.c.source_id == p.source_id,
                    owned(sources, p.course_id, cmd.tenant_id, cmd.user_id),
                )
                .returning(sources.c.source_id, sources.c.filename)
            )
        ).first()
        if gone is None:
            return None
        await enqueue(
            session,
            metadata,
            cmd.follow(
                SourceDeleted,
                SourceDeletedPayload(
                    course_id=p.course_id, source_id=p.source_id, filename=gone.filename
                ),
                message_id=derived_id(cmd.message_id, "source_deleted"),
            ),
        )
    return {"source_id": gone.source_id, "filename": gone.filename}


async def stage_upload(
    sessionmaker: Any, upload_id: str, part: int, tenant_id: str, user_id: str | None, data: bytes
) -> None:
    """Keep one part of a large file until its ingest command names it (idempotent)."""
    async with sessionmaker() as session, session.begin():
        # parts nobody ingested within a day are abandoned uploads
        await session.execute(
            delete(uploads).where(
                uploads.c.created_at < func.now() - func.make_interval(0, 0, 0, 1)
            )
        )
        await session.execute(
            insert(uploads)
            .values(upload_id=upload_id, part=part, tenant_id=tenant_id, user_id=user_id, data=data)
            .on_conflict_do_nothing()
        )


async def list_sources(
    session: AsyncSession, course_id: str, tenant_id: str, user_id: str | None
) -> list[dict[str, Any]]:
    """The owner's sources of a course, oldest first (without their content)."""
    rows = await session.execute(
        select(
            sources.c.source_id,
            sources.c.filename,
            sources.c.kind,
            sources.c.content_sha256,
            sources.c.size_bytes,
            sources.c.revision,
            sources.c.chunk_count,
            sources.c.page_count,
            sources.c.embedding_model,
            sources.c.created_at,
            sources.c.updated_at,
        )
        .where(owned(sources, course_id, tenant_id, user_id))
        .order_by(sources.c.created_at, sources.c.source_id)
    )
    return [
        {
            "source_id": r.source_id,
            "filename": r.filename,
            "kind": r.kind,
            "content_sha256": r.content_sha256,
            "size_bytes": r.size_bytes,
            "revision": r.revision,
            "chunks": r.chunk_count,
            "pages": r.page_count,
            "embedding_model": r.embedding_model,
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]
