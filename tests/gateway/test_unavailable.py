"""While PostgreSQL restarts the gateway answers 503 with Retry-After, not 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from services.gateway import unavailable


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    unavailable.install(app)

    @app.get("/")
    async def fail() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConnectionRefusedError(111, "Connection refused"), 503),
        (DBAPIError("SELECT 1", None, PgError("57P03")), 503),  # not yet accepting connections
        (DBAPIError("SELECT 1", None, PgError("08006")), 503),  # connection failure
        (DBAPIError("INSERT", None, PgError("23505")), 500),  # a unique violation stays a bug
        (ValueError("nope"), 500),
        (BrokenPipeError(32, "Broken pipe"), 500),  # a pipe, not the database
    ],
)
async def test_database_away_is_503(exc: Exception, status: int) -> None:
    transport = httpx.ASGITransport(app=app_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/")
    assert resp.status_code == status
    if status == 503:
        assert resp.headers["retry-after"] == "2" and "try again" in resp.json()["detail"]
