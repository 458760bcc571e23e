"""Consuming reliably: dispatch by schema, bounded retries with backoff, dead-lettering.

Every durable subscriber sits behind :class:`RetryMiddleware`. A failing message is
re-published to its queue's backoff queue with an attempt counter in its headers (we
count attempts ourselves: RabbitMQ 4.3+ no longer counts ``nack`` towards a quorum
queue's delivery limit). After ``max_attempts``, or at once for input that can never
succeed, it is published to the dead-letter queue with the reason, and a ``job.failed``
event tells the client why. The original is acked only after that publish is confirmed.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.contracts.base import Message
from shared.contracts.jobs import JobFailed, JobFailedPayload
from shared.metrics import DEAD_LETTERS, MESSAGE_RETRIES
from shared.topology import dead_letter_exchange, events_exchange, retry_queue_name

log = logging.getLogger("lectern.messaging")

ATTEMPT_HEADER = "x-lectern-attempt"
ERROR_HEADER = "x-lectern-error"
ROUTING_KEY_HEADER = "x-lectern-routing-key"
FAILED_QUEUE_HEADER = "x-lectern-failed-queue"
_FAILED_NS = uuid.UUID("0b8f6f0e-8d4e-4a55-9f39-5a8f1c2d7e10")


class PermanentError(Exception):
    """Handling can never succeed for this message: dead-letter it at once."""

    retryable = False


class UnknownMessageError(PermanentError):
    """No handler in this queue understands the message's schema."""


def is_permanent(exc: BaseException) -> bool:
    """True when retrying ``exc`` cannot help (bad input, invalid model output...)."""
    if isinstance(exc, ValidationError | json.JSONDecodeError | UnicodeDecodeError):
        return True
    return getattr(exc, "retryable", True) is False


def message_schema(msg: StreamMessage[Any]) -> str:
    """The message's ``schema`` (from its JSON body), cached on the message.

    A body without one is taken as v1 of its routing key, so a minimal publisher
    that leaves it out still reaches the v1 handler.
    """
    cached = getattr(msg, "_lectern_schema", None)
    if cached is not None:
        return str(cached)
    schema = ""
    try:
        body = json.loads(msg.body)
        if isinstance(body, dict) and isinstance(body.get("schema"), str):
            schema = body["schema"]
    except (ValueError, UnicodeDecodeError):
        schema = ""
    if not schema:
        rk = (msg.headers or {}).get(ROUTING_KEY_HEADER) or getattr(
            msg.raw_message, "routing_key", ""
        )
        schema = f"{rk}.v1" if rk else ""
    msg._lectern_schema = schema  # type: ignore[attr-defined]
    return schema


def for_schema(cls: type[Message]) -> Callable[[StreamMessage[Any]], bool]:
    """A subscriber filter matching one message type."""
    wanted = cls.SCHEMA

    def _filter(msg: StreamMessage[Any]) -> bool:
        return message_schema(msg) == wanted

    return _filter


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        return "invalid message: " + "; ".join(parts)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:1000]


def backoff_seconds(attempt: int, base_ms: int) -> float:
    """Exponential backoff with jitter for the ``attempt``-th failure (1-based)."""
    delay = base_ms * (2 ** (attempt - 1)) / 1000
    return min(delay * random.uniform(0.8, 1.2), 300.0)


class RetryMiddleware(BaseMiddleware):
    """Retry with backoff, then dead-letter with a reason and a ``job.failed`` event."""

    def __init__(
        self,
        msg: Any,
        /,
        *,
        context: Any,
        queue: str,
        service: str,
        max_attempts: int,
        base_delay_ms: int,
    ) -> None:
        super().__init__(msg, context=context)
        self.queue = queue
        self.service = service
        self.max_attempts = max_attempts
        self.base_delay_ms = base_delay_ms

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except Exception as exc:
            await self._on_failure(msg, exc)
            return None

    async def _on_failure(self, msg: StreamMessage[Any], exc: Exception) -> None:
        broker = self.context.get("broker")
        raw = msg.raw_message
        headers = dict(raw.headers or {})
        attempt = int(headers.get(ATTEMPT_HEADER, 1))
        headers[ROUTING_KEY_HEADER] = headers.get(ROUTING_KEY_HEADER) or raw.routing_key
        permanent = is_permanent(exc)
        reason = _error_text(exc)
        common = {
            "persist": True,
            "content_type": raw.content_type or "application/json",
            "message_id": raw.message_id,
            "correlation_id": raw.correlation_id,
        }
        if not permanent and attempt < self.max_attempts:
            delay = backoff_seconds(attempt, self.base_delay_ms)
            log.warning(
                "attempt %s/%s failed on %s, retrying in %.2fs: %s",
                attempt,
                self.max_attempts,
                self.queue,
                delay,
                reason,
            )
            headers[ATTEMPT_HEADER] = attempt + 1
            MESSAGE_RETRIES.labels(self.service, self.queue).inc()
            await broker.publish(
                raw.body,
                queue=retry_queue_name(self.queue),
                headers=headers,
                expiration=delay,
                **common,
            )
            return
        log.error(
            "dead-lettering message from %s after %s attempt(s): %s",
            self.queue,
            attempt,
            reason,
            exc_info=not permanent,
        )
        headers.update(
            {ERROR_HEADER: reason, FAILED_QUEUE_HEADER: self.queue, ATTEMPT_HEADER: attempt}
        )
        DEAD_LETTERS.labels(
            self.service, self.queue, "permanent" if permanent else "exhausted"
        ).inc()
        await broker.publish(
            raw.body,
            exchange=dead_letter_exchange,
            routing_key=self.queue,
            headers=headers,
            **common,
        )
        failed = job_failed_for(raw.body, reason, retryable=not permanent, attempts=attempt)
        if failed is not None:
            await broker.publish(
                failed.to_wire(),
                exchange=events_exchange,
                routing_key=JobFailed.routing_key(),
                message_id=failed.message_id,
                correlation_id=failed.correlation_id,
                persist=True,
            )


def job_failed_for(body: bytes, reason: str, *, retryable: bool, attempts: int) -> JobFailed | None:
    """The ``job.failed`` event for a dead-lettered body, if a job can be read from it.

    Its message_id derives from the failed message's, so a repeat is deduplicated.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    job_id = data.get("job_id")
    if not isinstance(job_id, str) or not job_id or len(job_id) > 200:
        return None
    original_id = str(data.get("message_id") or job_id)[:200]
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    course_id = payload.get("course_id") if isinstance(payload.get("course_id"), str) else None

    def _text(key: str) -> str | None:
        value = data.get(key)
        return value[:200] if isinstance(value, str) and value else None

    return JobFailed(
        message_id=str(uuid.uuid5(_FAILED_NS, f"{original_id}:failed")),
        job_id=job_id,
        correlation_id=_text("correlation_id") or job_id,
        causation_id=original_id,
        tenant_id=_text("tenant_id") or "default",
        user_id=_text("user_id"),
        payload=JobFailedPayload(
            reason=reason,
            retryable=retryable,
            failed_schema=_text("schema"),
            failed_message_id=original_id,
            attempts=attempts,
            course_id=course_id,
        ),
    )


def retry_middleware(
    queue: str, *, max_attempts: int, base_delay_ms: int, service: str = "lectern"
) -> Any:
    """The middleware factory FastStream expects, bound to one queue's settings."""
    return partial(
        RetryMiddleware,
        queue=queue,
        service=service,
        max_attempts=max_attempts,
        base_delay_ms=base_delay_ms,
    )
