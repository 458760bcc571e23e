"""Exit codes of ``lectern``: each means one thing a script can act on."""

from __future__ import annotations

from shared.client import errors

OK = 0  # done (for generate: the course is ready, or the plan was left to finish later)
FAILED = 1  # the job failed (job.failed), or the server could not do it (409, 5xx)
USAGE = 2  # bad arguments, or the server refused the input (422 naming the field)
UNREACHABLE = 3  # the gateway or RabbitMQ does not answer, or a service behind it (503)
UNAUTHORIZED = 4  # no valid token (401), not allowed (403), or broker credentials refused
NOT_FOUND = 5  # no such course, job or prompt (or not yours)
LIMITED = 6  # over budget (402) or rate limited (429): the server's message says which
TIMEOUT = 7  # no final event within --timeout, or no event within --idle-timeout
INTERRUPTED = 130  # Ctrl-C

DESCRIPTIONS = {
    OK: "success",
    FAILED: "the job failed, or the server could not do what was asked",
    USAGE: "bad arguments, or the server refused the input (422)",
    UNREACHABLE: "the gateway or RabbitMQ is unreachable, or a service is down (503)",
    UNAUTHORIZED: "not logged in, token refused, or not allowed (401/403)",
    NOT_FOUND: "not found (404)",
    LIMITED: "over budget or rate limited (402/429)",
    TIMEOUT: "timed out waiting for the job's events",
    INTERRUPTED: "interrupted (Ctrl-C)",
}

_BY_CLASS: list[tuple[type[errors.LecternError], int]] = [
    (errors.InvalidInput, USAGE),
    (errors.ServiceDown, UNREACHABLE),
    (errors.ServiceUnavailable, UNREACHABLE),
    (errors.Unroutable, UNREACHABLE),
    (errors.Unauthorized, UNAUTHORIZED),
    (errors.Forbidden, UNAUTHORIZED),
    (errors.NotFound, NOT_FOUND),
    (errors.OverBudget, LIMITED),
    (errors.RateLimited, LIMITED),
    (errors.EventTimeout, TIMEOUT),
    (errors.JobFailed, FAILED),
]


def for_error(exc: errors.LecternError) -> int:
    """The exit code for a client error (FAILED for anything not listed)."""
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    return FAILED
