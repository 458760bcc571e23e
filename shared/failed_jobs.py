"""The ``job.failed`` a dead-lettered message gets: who is told, and with which id.

The job is the body's ``job_id``, else its ``correlation_id`` (whichever the publisher
follows), read without trusting the body (:func:`shared.wire.read_envelope`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError

from shared.contracts.jobs import JobFailed, JobFailedPayload
from shared.wire import DEFAULT_MAX_MESSAGE_BYTES, clean_text, read_envelope

log = logging.getLogger("lectern.messaging")

_FAILED_NS = uuid.UUID("0b8f6f0e-8d4e-4a55-9f39-5a8f1c2d7e10")


def job_failed_for(
    body: bytes,
    reason: str,
    *,
    retryable: bool,
    attempts: int,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> JobFailed | None:
    """The ``job.failed`` event for a dead-lettered body, if a job can be read from it.

    The job is the body's ``job_id``, else its ``correlation_id``: whichever the
    publisher follows. None when the body names neither, and for a failed
    ``job.failed`` itself (answering it with another could loop). Its message_id
    derives from the failed message's id and job, so a repeat is deduplicated.
    Never raises.
    """
    data = read_envelope(body, max_bytes=max_bytes)
    job_id, correlation_id = _id(data.get("job_id")), _id(data.get("correlation_id"))
    schema = clean_text(data.get("schema"))
    if not (job_id or correlation_id) or (schema or "").startswith(JobFailed.routing_key() + "."):
        return None
    job = job_id or correlation_id or ""
    original_id = _id(data.get("message_id")) or job
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    try:
        return JobFailed(
            message_id=str(uuid.uuid5(_FAILED_NS, f"{original_id}\x1f{job}:failed")),
            job_id=job,
            correlation_id=correlation_id or job,
            causation_id=original_id,
            tenant_id=_id(data.get("tenant_id")) or "default",
            user_id=_id(data.get("user_id")),
            payload=JobFailedPayload(
                reason=reason,
                retryable=retryable,
                failed_schema=schema,
                failed_message_id=original_id,
                attempts=attempts,
                course_id=_id(payload.get("course_id")),
            ),
        )
    except ValidationError:  # pragma: no cover - every field is cut to fit above
        log.exception("could not build job.failed for a dead-lettered message")
        return None


def _id(value: Any) -> str | None:
    """An id as the envelope allows it (text, 1 to 200 characters, printable), else None:
    a cut or cleaned id would name someone else's job."""
    text = clean_text(value, 1000)
    return text if text is not None and text == value and len(text) <= 200 else None
