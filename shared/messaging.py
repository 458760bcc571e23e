"""Consuming reliably: dispatch by schema, bounded retries with backoff, dead-lettering.

Every durable subscriber sits behind :class:`RetryMiddleware`. A failing message is
re-published to its queue's backoff queue with an attempt counter in its headers (we
count attempts ourselves: RabbitMQ 4.3+ no longer counts ``nack`` towards a quorum
queue's delivery limit). After ``max_attempts``, or at once for input that can never
succeed, it is published to the dead-letter queue with the reason, and a ``job.failed``
event tells the client why. The original is acked only after that publish is confirmed.

Hostile input gets the same treatment: a body over the size limit, one that is not a
JSON object, one no handler takes, one whose filter or parser fails, garbage in the
headers (see :mod:`shared.wire`) — each is dead-lettered at once with a reason, and no
consumer stops or loops on it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from faststream import BaseMiddleware
from faststream.exceptions import IgnoredException, SubscriberNotFound
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.contracts.base import Message
from shared.contracts.jobs import JobFailed
from shared.db import database_unavailable
from shared.failed_jobs import job_failed_for
from shared.metrics import DEAD_LETTERS, MESSAGE_RETRIES
from shared.topology import dead_letter_exchange, events_exchange, retry_queue_name
from shared.wire import (
    ATTEMPT_HEADER,
    DEFAULT_MAX_MESSAGE_BYTES,
    InvalidBody,
    attempt_of,
    check_content_type,
    clean_text,
    decode_body,
    property_text,
    publishable_headers,
    read_envelope,
    size_error,
)

log = logging.getLogger("lectern.messaging")

__all__ = [
    "ATTEMPT_HEADER",
    "PermanentError",
    "RetryMiddleware",
    "UnknownMessageError",
    "job_failed_for",
]

ERROR_HEADER = "x-lectern-error"
ROUTING_KEY_HEADER = "x-lectern-routing-key"
FAILED_QUEUE_HEADER = "x-lectern-failed-queue"


class PermanentError(Exception):
    """Handling can never succeed for this message: dead-letter it at once."""

    retryable = False


class UnknownMessageError(PermanentError):
    """No handler in this queue understands the message's schema."""


def is_permanent(exc: BaseException) -> bool:
    """True when retrying ``exc`` cannot help (bad input, invalid model output...)."""
    if isinstance(exc, ValidationError | json.JSONDecodeError | UnicodeError | RecursionError):
        return True
    if _sqlstate(exc).startswith("22"):  # PostgreSQL "data exception": the data is wrong
        return True
    return getattr(exc, "retryable", True) is False


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a database error (asyncpg, or wrapped by SQLAlchemy), else ''."""
    for err in (exc, getattr(exc, "orig", None)):
        state = getattr(err, "sqlstate", None)
        if isinstance(state, str):
            return state
    return ""


def message_schema(msg: StreamMessage[Any]) -> str:
    """The message's ``schema`` (from its JSON body), cached on the message.

    A body without one is taken as v1 of its routing key, so a minimal publisher
    that leaves it out still reaches the v1 handler. Never raises: it runs in
    subscriber filters, before the retry middleware can catch anything.
    """
    cached = getattr(msg, "_lectern_schema", None)
    if cached is not None:
        return str(cached)
    routing_key = getattr(msg.raw_message, "routing_key", "")
    schema = _schema_of(msg.body, msg.headers, routing_key)
    msg._lectern_schema = schema  # type: ignore[attr-defined]
    return schema


def _schema_of(body: bytes, headers: Any, routing_key: Any) -> str:
    """The schema a delivery's body names, else v1 of its routing key, else ''."""
    schema = read_envelope(body or b"").get("schema")
    if isinstance(schema, str) and schema:
        return schema
    rk = (headers or {}).get(ROUTING_KEY_HEADER) or routing_key
    return f"{rk}.v1" if isinstance(rk, str) and rk else ""


def for_schema(cls: type[Message]) -> Callable[[StreamMessage[Any]], Awaitable[bool]]:
    """A subscriber filter matching one message type.

    A coroutine function: FastStream runs a plain function given as a filter in a
    worker thread (``to_async``), a thread hop for every handler a message is checked
    against (``tests/unit/test_handler_signatures.py`` keeps them out)."""
    wanted = cls.SCHEMA

    async def _filter(msg: StreamMessage[Any]) -> bool:
        return message_schema(msg) == wanted

    return _filter


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors()[:10]:
            where = ".".join(str(p)[:60] for p in e["loc"]) or "body"
            parts.append(f"{where}: {e['msg']}")
        text = "invalid message: " + "; ".join(parts)
    elif _sqlstate(exc).startswith("22"):
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        text = f"data the database refuses: {first}"
    else:
        text = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return clean_text(text, 1000) or type(exc).__name__


def backoff_seconds(attempt: int, base_ms: int) -> float:
    """Exponential backoff with jitter for the ``attempt``-th failure (1-based)."""
    delay = base_ms * (2 ** (min(attempt, 30) - 1)) / 1000
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
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(msg, context=context)
        self.queue = queue
        self.service = service
        self.max_attempts = max_attempts
        self.base_delay_ms = base_delay_ms
        self.max_message_bytes = max_message_bytes
        self._reached_handler = False

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        self._reached_handler = True
        # checked before anything parses the body for the handler
        too_large = size_error(len(msg.body), self.max_message_bytes)
        if too_large is not None:
            await self._on_failure(msg.raw_message, too_large)
            return None
        try:
            return await call_next(msg)
        except Exception as exc:
            await self._on_failure(msg.raw_message, exc)
            return None

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: Any = None,
    ) -> bool | None:
        """Dead-letter a message that failed before any handler ran.

        FastStream parses the message and runs the subscriber filters outside
        :meth:`consume_scope`; an error there (or no handler taking the message) would
        otherwise nack it with requeue, and it would come back forever. Such a message
        can never be handled: it is dead-lettered at once and the error suppressed.
        """
        if (
            self._reached_handler
            or not isinstance(exc_val, Exception)
            or isinstance(exc_val, IgnoredException)
        ):
            return False
        raw = self.msg
        await self._on_failure(raw, self._rejection(raw, exc_val))
        return True

    def _rejection(self, raw: Any, exc: Exception) -> Exception:
        """Why a message no handler took is refused: what is wrong with it first."""
        body = raw.body or b""
        too_large = size_error(len(body), self.max_message_bytes)
        if too_large is not None:
            return too_large
        if not isinstance(exc, SubscriberNotFound):
            return PermanentError(f"unreadable message: {_error_text(exc)}")
        try:
            check_content_type(raw.content_type)
            decode_body(body)
        except InvalidBody as invalid:
            return invalid
        schema = _schema_of(body, raw.headers, raw.routing_key)
        return UnknownMessageError(f"{self.queue} has no handler for {schema!r}")

    async def _on_failure(self, raw: Any, exc: Exception) -> None:
        broker = self.context.get("broker")
        received = raw.headers or {}
        headers: dict[str, Any] = publishable_headers(dict(received))
        attempt = attempt_of(received, self.max_attempts)
        routing_key = received.get(ROUTING_KEY_HEADER)
        if not isinstance(routing_key, str) or not routing_key:
            routing_key = property_text(raw.routing_key) or ""
        headers[ROUTING_KEY_HEADER] = routing_key
        permanent = is_permanent(exc)
        reason = _error_text(exc)
        common = {
            "persist": True,
            "content_type": property_text(raw.content_type) or "application/json",
            "message_id": property_text(raw.message_id),
            "correlation_id": property_text(raw.correlation_id),
        }
        # PostgreSQL away (a restart, a failover) is no fault of the message: it waits
        # for the database without spending its attempts, instead of being dead-lettered
        # (its job failed) by any outage longer than the retry budget
        outage = not permanent and database_unavailable(exc)
        if outage or (not permanent and attempt < self.max_attempts):
            step = max(attempt, self.max_attempts - 1) if outage else attempt
            delay = backoff_seconds(step, self.base_delay_ms)
            log.warning(
                "attempt %s/%s failed on %s, retrying in %.2fs: %s",
                attempt,
                self.max_attempts,
                self.queue,
                delay,
                reason,
                # where it failed: an outage is routine, anything else may be a bug
                exc_info=None if outage else exc,
            )
            headers[ATTEMPT_HEADER] = attempt if outage else attempt + 1
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
        failed = job_failed_for(
            raw.body,
            reason,
            retryable=not permanent,
            attempts=attempt,
            max_bytes=self.max_message_bytes,
        )
        if failed is not None:
            await broker.publish(
                failed.to_wire(),
                exchange=events_exchange,
                routing_key=JobFailed.routing_key(),
                message_id=failed.message_id,
                correlation_id=failed.correlation_id,
                persist=True,
            )


def retry_middleware(
    queue: str,
    *,
    max_attempts: int,
    base_delay_ms: int,
    service: str = "lectern",
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Any:
    """The middleware factory FastStream expects, bound to one queue's settings."""
    return partial(
        RetryMiddleware,
        queue=queue,
        service=service,
        max_attempts=max_attempts,
        base_delay_ms=base_delay_ms,
        max_message_bytes=max_message_bytes,
    )
