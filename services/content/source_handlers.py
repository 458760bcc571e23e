"""The content service's source subscribers and queries: ingest, delete, stage, search."""

from __future__ import annotations

import base64
import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.content import sources
from services.content.embeddings import make_embedder
from services.content.retrieval import Retriever, detect_backend
from shared.contracts.base import new_id
from shared.contracts.sources import (
    DeleteSource,
    DeleteSourcePayload,
    IngestSource,
    SourceDeleted,
    SourceIngested,
    SourceProgress,
)
from shared.messaging import for_schema
from shared.rpc import RpcError, not_found, parse_query
from shared.runtime import Runtime
from shared.telemetry import job_context

log = logging.getLogger("lectern.content.sources")

UPLOAD_PART_BYTES = 512 * 1024  # the largest part stage_upload takes (before base64)


class Owner(BaseModel):
    """Who asks, for which course: every source query is filtered on them."""

    tenant_id: str = Field(min_length=1, description="The course owner's tenant.")
    user_id: str | None = Field(None, description="The course owner.")
    course_id: str = Field(min_length=1, description="The course.")


class SearchQuery(Owner):
    """Body of ``content.rpc.search_sources``."""

    q: str = Field(min_length=1, max_length=2000, description="The question or topic.")
    k: int = Field(5, ge=1, le=50, description="How many passages.")
    mode: Literal["hybrid", "vector", "fts"] = Field("hybrid", description="Ranking method.")


class DeleteQuery(Owner):
    """Body of ``content.rpc.delete_source``."""

    source_id: str = Field(min_length=1, description="The source to delete.")
    job_id: str = Field(default_factory=new_id, description="Job source.deleted belongs to.")


class StageQuery(BaseModel):
    """Body of ``content.rpc.stage_upload``: one part of a large file."""

    tenant_id: str = Field(min_length=1)
    user_id: str | None = None
    upload_id: str = Field(min_length=1, max_length=200)
    part: int = Field(ge=0, le=10_000)
    data_base64: str = Field(min_length=1)


def register(runtime: Runtime, commands: Any) -> Retriever:
    """Attach ingestion and deletion commands and the source queries; the retriever."""
    for event in (SourceIngested, SourceDeleted, SourceProgress):
        runtime.event_publisher(event)
    settings = runtime.settings
    embedder = make_embedder(settings)
    retriever = Retriever(runtime.sessionmaker, embedder)
    deps = sources.SourceDeps(
        sessionmaker=runtime.sessionmaker,
        embedder=embedder,
        publish=runtime.publish,
        wake_relay=runtime.relay.wake,
        max_bytes=settings.source_max_bytes,
        max_per_course=settings.source_max_per_course,
    )

    async def choose_backend() -> None:
        async with runtime.sessionmaker() as session:
            retriever.backend = await detect_backend(session)
        how = (
            "pgvector (cosine ranked in SQL)"
            if retriever.backend == "pgvector"
            else "exact search in numpy (pgvector is not installed)"
        )
        log.info("source retrieval: %s; embeddings: %s", how, embedder.name)

    runtime.on_startup(choose_backend)

    @commands(filter=for_schema(IngestSource))
    async def ingest_source(cmd: IngestSource) -> None:
        """Extract, chunk and embed a course source; emit source.ingested."""
        with job_context(cmd.job_id, cmd):
            await sources.ingest_source(cmd, deps)

    @commands(filter=for_schema(DeleteSource))
    async def delete_source(cmd: DeleteSource) -> None:
        """Delete a course source and its chunks; emit source.deleted."""
        with job_context(cmd.job_id, cmd):
            if await sources.delete_source(cmd, runtime.sessionmaker) is not None:
                runtime.relay.wake()

    @runtime.rpc.query("list_sources")
    async def list_sources(body: dict[str, Any]) -> dict[str, Any]:
        """The owner's sources of a course."""
        owner = parse_query(Owner, body)
        async with runtime.sessionmaker() as session:
            found = await sources.list_sources(
                session, owner.course_id, owner.tenant_id, owner.user_id
            )
        return {"course_id": owner.course_id, "sources": found}

    @runtime.rpc.query("search_sources")
    async def search_sources(body: dict[str, Any]) -> dict[str, Any]:
        """The passages of the owner's course sources that best answer a query."""
        q = parse_query(SearchQuery, body)
        found = await retriever.search(q.course_id, q.tenant_id, q.user_id, q.q, k=q.k, mode=q.mode)
        return {"passages": [p.as_dict() for p in found], "backend": retriever.backend}

    @runtime.rpc.query("delete_source")
    async def delete_source_now(body: dict[str, Any]) -> dict[str, Any]:
        """Delete a source now (the gateway's DELETE); 404 when it is not theirs."""
        q = parse_query(DeleteQuery, body)
        cmd = DeleteSource(
            job_id=q.job_id,
            correlation_id=q.job_id,
            tenant_id=q.tenant_id,
            user_id=q.user_id,
            payload=DeleteSourcePayload(course_id=q.course_id, source_id=q.source_id),
        )
        gone = await sources.delete_source(cmd, runtime.sessionmaker)
        if gone is None:
            raise not_found(f"source {q.source_id} of course {q.course_id}")
        runtime.relay.wake()
        return gone

    @runtime.rpc.query("stage_upload")
    async def stage_upload(body: dict[str, Any]) -> dict[str, Any]:
        """Keep one part of a large file for a later ingest command."""
        q = parse_query(StageQuery, body)
        try:
            data = base64.b64decode(q.data_base64, validate=True)
        except ValueError as exc:
            raise RpcError(400, "data_base64 is not valid base64") from exc
        if len(data) > UPLOAD_PART_BYTES:
            raise RpcError(413, f"a part holds at most {UPLOAD_PART_BYTES} bytes")
        await sources.stage_upload(
            runtime.sessionmaker, q.upload_id, q.part, q.tenant_id, q.user_id, data
        )
        return {"upload_id": q.upload_id, "part": q.part, "bytes": len(data)}

    return retriever
