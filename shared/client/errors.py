"""What can go wrong when driving Lectern, as exceptions that carry the server's words.

Every exception is a :class:`LecternError` with a ``message`` a person can act on and,
for HTTP, the ``status`` the gateway answered. Callers that map failures to outcomes
(the ``lectern`` CLI's exit codes) branch on the class, never on the text.
"""

from __future__ import annotations

from typing import Any


class LecternError(Exception):
    """Base of every client error: ``message`` says what happened, ``status`` the HTTP code."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ServiceDown(LecternError):
    """Nothing answers at ``url`` (connection refused, unknown host, connect timeout)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ServiceUnavailable(LecternError):
    """The gateway answered 503: a service behind it (or the broker) is not answering."""


class Unauthorized(LecternError):
    """401: no token, or a forged or expired one (or the broker refused the credentials)."""


class Forbidden(LecternError):
    """403: the token is valid but its role may not do this (prompt administration)."""


class NotFound(LecternError):
    """404: missing, or not yours (Lectern answers both the same way)."""


class Conflict(LecternError):
    """409: not possible in the current state (e.g. refining a finalised course)."""


class InvalidInput(LecternError):
    """422 (or a command refused before publishing): ``fields`` maps each field to its problem."""

    def __init__(self, message: str, *, status: int | None = 422, fields: dict[str, str]) -> None:
        super().__init__(message, status=status)
        self.fields = fields


class OverBudget(LecternError):
    """402: the caller's budget is spent; the message says which."""


class RateLimited(LecternError):
    """429: too many requests; ``retry_after`` seconds when the server said."""

    def __init__(self, message: str, *, status: int = 429, retry_after: float | None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(LecternError):
    """Any other error answer (500, an unexpected status)."""


class JobFailed(LecternError):
    """The job ended with ``job.failed``: ``reason``, ``retryable`` and the whole event body."""

    def __init__(self, body: dict[str, Any]) -> None:
        payload = body.get("payload") or {}
        self.reason = str(payload.get("reason") or "the job failed")
        self.retryable = bool(payload.get("retryable", False))
        self.body = body
        super().__init__(self.reason)


class EventTimeout(LecternError):
    """No final event in time: ``idle`` is True when no event came for the idle timeout."""

    def __init__(self, message: str, *, idle: bool) -> None:
        super().__init__(message)
        self.idle = idle


class Unroutable(LecternError):
    """The broker returned a mandatory publish: no queue is bound for ``routing_key``."""

    def __init__(self, message: str, *, exchange: str, routing_key: str) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.routing_key = routing_key


class PublishRejected(LecternError):
    """The broker nacked a publish (publisher confirms): it did not take the message."""


class SubscriptionLost(LecternError):
    """The job's event queue no longer exists (expired, or deleted after its final event)."""
