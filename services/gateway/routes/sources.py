"""``/v1/courses/{id}/sources``: the author's own files a course is written from.

Upload (multipart; Markdown, plain text, HTML, PDF), list, delete and search. Only
the course's owner sees or changes its sources; anyone else gets a 404, as for a
missing course. Ingestion is a job: ``source.progress`` events, then
``source.ingested`` (or ``job.failed`` saying why).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import Response
from pydantic import AfterValidator, Field

from services.gateway import uploads
from services.gateway.auth import CurrentPrincipal, Principal
from services.gateway.commands import Accepted, ask, envelope, submit
from services.gateway.inputs import ResourceId, check_text
from services.gateway.rate_limits import GENERATE, limit
from services.gateway.routes.courses import CourseId, _course
from shared.contracts.base import new_id
from shared.contracts.sources import IngestSource, IngestSourcePayload

router = APIRouter(prefix="/v1/courses", tags=["sources"])
SourceId = ResourceId
FORMATS = {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf"}
READ_CHUNK = 1024 * 1024


class SourceAccepted(Accepted):
    source_id: str = Field(description="The source; its ingestion is the job.")
    filename: str = Field(description="The uploaded file's name.")
    replaced: bool = Field(description="True when a source of that name was replaced.")


async def _read_limited(file: UploadFile, max_bytes: int) -> bytes:
    data = bytearray()
    while chunk := await file.read(READ_CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise HTTPException(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                detail=f"file: {file.filename} is over the limit of {max_bytes} bytes "
                "(LECTERN_SOURCE_MAX_BYTES)",
            )
    return bytes(data)


def _filename(file: UploadFile) -> str:
    name = " ".join((file.filename or "").replace("\\", "/").rsplit("/", 1)[-1].split())
    if not name or len(name) > 300:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, detail="file: needs a file name (300 at most)"
        )
    try:
        check_text(name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"file: {exc}") from exc
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in FORMATS:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"file: {name} is not a supported format "
            "(Markdown .md, plain text .txt, HTML .html, PDF .pdf)",
        )
    return name


async def _sources(request: Request, who: Principal, course_id: str) -> list[dict[str, Any]]:
    found = await ask(
        request,
        "content",
        "list_sources",
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        course_id=course_id,
    )
    return list(found["sources"])


@router.post(
    "/{course_id}/sources", status_code=status.HTTP_202_ACCEPTED, response_model=SourceAccepted
)
async def upload_source(
    course_id: CourseId,
    request: Request,
    who: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="Markdown, plain text, HTML or PDF.")],
    language: Annotated[
        str, Form(pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$", description="Language of the text.")
    ] = "en",
) -> SourceAccepted:
    """Add a file to the course's sources (a file of the same name is replaced).

    The job streams ``source.progress`` (extracting, chunking, embedding) and ends with
    ``source.ingested``. 409 for a file the course already has (same content) or when
    the course has as many sources as allowed; 413 over the size limit; 415 for other
    formats.
    """
    await _course(request, who, course_id)
    settings = request.app.state.settings
    filename = _filename(file)
    data = await _read_limited(file, settings.source_max_bytes)
    if not data:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"file: {filename} is empty"
        )
    digest = hashlib.sha256(data).hexdigest()
    existing = await _sources(request, who, course_id)
    same = next((s for s in existing if s["content_sha256"] == digest), None)
    if same is not None and same["filename"] != filename:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"file: {filename} is a duplicate of {same['filename']} "
            f"(source {same['source_id']}) in this course",
        )
    named = next((s for s in existing if s["filename"] == filename), None)
    if named is None and len(existing) >= settings.source_max_per_course:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"course {course_id} already has {len(existing)} sources, the most allowed "
            "(LECTERN_SOURCE_MAX_PER_COURSE): delete one first",
        )
    await limit(request, GENERATE, who)
    source_id = named["source_id"] if named else new_id()
    content: dict[str, Any] = {}
    if len(data) <= uploads.INLINE_MAX_BYTES:
        content["content_base64"] = base64.b64encode(data).decode()
    else:
        content["upload_id"] = new_id()
        await uploads.stage(request, content["upload_id"], data, who.tenant_id, who.user_id)
    command = IngestSource(
        **envelope(who),
        payload=IngestSourcePayload(
            course_id=course_id,
            source_id=source_id,
            filename=filename,
            media_type=file.content_type,
            content_sha256=digest,
            size_bytes=len(data),
            language=language,
            **content,
        ),
    )
    accepted = await submit(
        request, who, command, kind="ingest_source", final_events=["source.ingested", "job.failed"]
    )
    return SourceAccepted(
        **accepted.model_dump(), source_id=source_id, filename=filename, replaced=named is not None
    )


@router.get("/{course_id}/sources")
async def list_sources(course_id: CourseId, request: Request, who: CurrentPrincipal) -> Any:
    """The course's sources: file name, format, size, chunks, pages, revision."""
    await _course(request, who, course_id)
    return {"course_id": course_id, "sources": await _sources(request, who, course_id)}


@router.delete(
    "/{course_id}/sources/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_source(
    course_id: CourseId, source_id: SourceId, request: Request, who: CurrentPrincipal
) -> Response:
    """Delete a source and its passages; lessons written from it keep their citations."""
    await _course(request, who, course_id)
    await ask(
        request,
        "content",
        "delete_source",
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        course_id=course_id,
        source_id=source_id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{course_id}/sources/search")
async def search_sources(
    course_id: CourseId,
    request: Request,
    who: CurrentPrincipal,
    q: Annotated[
        str,
        AfterValidator(check_text),
        Query(min_length=1, max_length=2000, description="A question."),
    ],
    k: Annotated[int, Query(ge=1, le=20)] = 5,
    mode: Annotated[Literal["hybrid", "vector", "fts"], Query()] = "hybrid",
) -> Any:
    """The passages of the course's sources that best answer ``q`` (what lessons cite)."""
    await _course(request, who, course_id)
    return await ask(
        request,
        "content",
        "search_sources",
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        course_id=course_id,
        q=q,
        k=k,
        mode=mode,
    )
