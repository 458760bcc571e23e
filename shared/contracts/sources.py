"""Course sources: the author's own files, ingested by the content service for retrieval."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.contracts.base import Message, Payload

SourceKind = Literal["markdown", "text", "html", "pdf"]


class IngestSourcePayload(Payload):
    course_id: str = Field(description="Course the source belongs to.", examples=["c-1"])
    source_id: str = Field(
        min_length=1,
        max_length=200,
        description="Id of the source; an existing id (same course and owner) is re-ingested.",
        examples=["src-1"],
    )
    filename: str = Field(
        min_length=1, max_length=300, description="File name; its extension gives the format."
    )
    media_type: str | None = Field(
        None, description="MIME type, when known (text/markdown, text/html, application/pdf...)."
    )
    content_sha256: str = Field(
        pattern="^[0-9a-f]{64}$", description="SHA-256 of the file's bytes (hex): dedupe key."
    )
    size_bytes: int = Field(ge=1, description="Size of the file in bytes.")
    content_base64: str | None = Field(
        None, description="The file itself, base64 (for files that fit in one message)."
    )
    upload_id: str | None = Field(
        None,
        description="Or: a file staged in parts with content.rpc.stage_upload (large files).",
    )
    language: str = Field(
        "en", description="Language of the text (full-text stemming).", examples=["en"]
    )

    @model_validator(mode="after")
    def _one_content(self) -> IngestSourcePayload:
        if (self.content_base64 is None) == (self.upload_id is None):
            raise ValueError("give exactly one of content_base64 and upload_id")
        return self


class IngestSource(Message):
    """Extract, chunk and embed one source file of a course (progress as events)."""

    SCHEMA = "content.ingest_source.v1"
    KIND = "command"
    payload: IngestSourcePayload


class DeleteSourcePayload(Payload):
    course_id: str = Field(description="Course of the source.", examples=["c-1"])
    source_id: str = Field(description="The source to delete, with its chunks.")


class DeleteSource(Message):
    """Delete a source and its chunks; retrieval stops returning them at once."""

    SCHEMA = "content.delete_source.v1"
    KIND = "command"
    payload: DeleteSourcePayload


class SourceProgressPayload(Payload):
    course_id: str = Field(description="Course of the source.")
    source_id: str = Field(description="The source being ingested.")
    filename: str = Field(description="Its file name.")
    stage: Literal["extracting", "chunking", "embedding", "storing"] = Field(
        description="What ingestion is doing now."
    )
    done: int = Field(ge=0, description="Chunks embedded so far (embedding), else 0.")
    total: int = Field(ge=0, description="Chunks to embed (0 until the text is chunked).")


class SourceProgress(Message):
    """Ingestion progress of a source. Ephemeral: published directly, not via the outbox."""

    SCHEMA = "source.progress.v1"
    payload: SourceProgressPayload


class SourceIngestedPayload(Payload):
    course_id: str = Field(description="Course of the source.")
    source_id: str = Field(description="The source.")
    filename: str = Field(description="Its file name.")
    kind: SourceKind = Field(description="Format the text was extracted from.")
    revision: int = Field(ge=1, description="1 for a new source; +1 each time it is replaced.")
    chunks: int = Field(ge=1, description="Chunks stored for retrieval.")
    pages: int | None = Field(None, description="Pages of a PDF.")
    size_bytes: int = Field(ge=1, description="Size of the file in bytes.")
    content_sha256: str = Field(description="SHA-256 of the file's bytes (hex).")
    embedding_model: str = Field(description="Model the chunks were embedded with.")


class SourceIngested(Message):
    """A source was ingested (or replaced): its chunks are searchable."""

    SCHEMA = "source.ingested.v1"
    payload: SourceIngestedPayload


class SourceDeletedPayload(Payload):
    course_id: str = Field(description="Course of the source.")
    source_id: str = Field(description="The deleted source.")
    filename: str = Field(description="Its file name.")


class SourceDeleted(Message):
    """A source and its chunks were deleted."""

    SCHEMA = "source.deleted.v1"
    payload: SourceDeletedPayload
