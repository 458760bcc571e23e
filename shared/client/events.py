"""One event of a job, as both clients yield it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What ends the job of each command, as the gateway records them (final_events).
FINAL_EVENTS: dict[str, tuple[str, ...]] = {
    "plan_course": ("course.plan_proposed", "job.failed"),
    "plan_course_auto": ("course.ready", "job.failed"),
    "refine_plan": ("course.plan_proposed", "job.failed"),
    "finalize_course": ("course.ready", "job.failed"),
    "revise_lesson": ("lesson.revised", "job.failed"),
    "generate_exercise": ("exercise.ready", "job.failed"),
}


def event_name(schema: str) -> str:
    """``course.ready.v1`` → ``course.ready`` (a name without a version stays as it is)."""
    return schema.rsplit(".v", 1)[0] if ".v" in schema else schema


@dataclass(frozen=True)
class Event:
    """A job's event: ``name`` (``course.ready``), the whole message ``body`` and its ``id``.

    ``id`` is the event's resume position: over HTTP the SSE id (the job's sequence
    number, for ``Last-Event-ID``), over the broker the ``message_id`` (pass it back in
    ``seen`` to resume). ``redelivered`` is True when the broker delivered it before.
    """

    name: str
    body: dict[str, Any] = field(repr=False)
    id: str | None = None
    redelivered: bool = False

    @property
    def payload(self) -> dict[str, Any]:
        """The event's payload (an empty dict when it has none)."""
        payload = self.body.get("payload")
        return payload if isinstance(payload, dict) else {}

    @property
    def message_id(self) -> str | None:
        """The message's unique id (the idempotency key)."""
        value = self.body.get("message_id")
        return str(value) if value is not None else None

    @property
    def job_id(self) -> str | None:
        """The job the event belongs to."""
        value = self.body.get("job_id")
        return str(value) if value is not None else None

    @property
    def correlation_id(self) -> str | None:
        """The correlation id of the command that started the job."""
        value = self.body.get("correlation_id")
        return str(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"event", "id", "data"}`` (``data`` is the whole message)."""
        return {"event": self.name, "id": self.id, "data": self.body}
