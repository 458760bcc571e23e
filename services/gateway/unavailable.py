"""503, not 500, while the database cannot be reached: a restart or an outage passes,
and a client (or a load balancer) retries a 503 where it would report a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from shared.db import database_unavailable

RETRY_AFTER_S = 2


async def database_unavailable_response(request: Request, exc: Exception) -> JSONResponse:
    """The 503 for an unreachable database; any other error goes on to be a 500."""
    if not database_unavailable(exc):
        raise exc
    return JSONResponse(
        {"detail": "the database is not answering right now; try again shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI) -> None:
    """Answer 503 with ``Retry-After`` when a request fails because PostgreSQL is away."""
    for kind in (DBAPIError, ConnectionError):
        app.add_exception_handler(kind, database_unavailable_response)
