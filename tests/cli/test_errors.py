"""HTTP answers become exceptions with the server's words; exceptions become exit codes."""

from __future__ import annotations

import argparse

import httpx
import pytest

from lectern_cli import exit_codes
from lectern_cli.main import hint
from shared.client import errors
from shared.client.http import error_for


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (401, errors.Unauthorized, exit_codes.UNAUTHORIZED),
        (403, errors.Forbidden, exit_codes.UNAUTHORIZED),
        (404, errors.NotFound, exit_codes.NOT_FOUND),
        (409, errors.Conflict, exit_codes.FAILED),
        (402, errors.OverBudget, exit_codes.LIMITED),
        (503, errors.ServiceUnavailable, exit_codes.UNREACHABLE),
        (500, errors.ServerError, exit_codes.FAILED),
    ],
)
def test_status_maps_to_exception_and_exit_code(status: int, cls: type, code: int) -> None:
    exc = error_for(answer(status, {"detail": "what the server said"}))
    assert type(exc) is cls
    assert "what the server said" in exc.message
    assert exc.status == status
    assert exit_codes.for_error(exc) == code


def test_422_names_each_field() -> None:
    body = {
        "detail": [
            {"loc": ["body", "topic"], "msg": "String should have at least 2 characters"},
            {"loc": ["body", "duration_hours"], "msg": "Input should be greater than 0"},
        ]
    }
    exc = error_for(answer(422, body))
    assert isinstance(exc, errors.InvalidInput)
    assert exc.fields == {
        "topic": "String should have at least 2 characters",
        "duration_hours": "Input should be greater than 0",
    }
    assert "topic: String should have at least 2 characters" in exc.message
    assert exit_codes.for_error(exc) == exit_codes.USAGE


def test_429_keeps_retry_after_and_the_message() -> None:
    exc = error_for(answer(429, {"detail": "slow down: 10 courses a minute"}, {"Retry-After": "7"}))
    assert isinstance(exc, errors.RateLimited) and exc.retry_after == 7.0
    args = argparse.Namespace(url="http://gw")
    assert hint(exc, args) == "slow down: 10 courses a minute (retry after 7 s)"
    assert exit_codes.for_error(exc) == exit_codes.LIMITED


def test_a_non_json_error_body_is_kept_as_text() -> None:
    exc = error_for(httpx.Response(502, text="Bad Gateway from the proxy"))
    assert isinstance(exc, errors.ServerError) and "Bad Gateway from the proxy" in exc.message


def test_hints_say_what_to_do() -> None:
    args = argparse.Namespace(url="http://gw:1")
    down = errors.ServiceDown("cannot reach the Lectern gateway at http://gw:1", url="http://gw:1")
    assert "make run" in hint(down, args) and "http://gw:1" in hint(down, args)
    mq = errors.ServiceDown("cannot reach RabbitMQ at amqp://g@mq/", url="amqp://g@mq/")
    assert "--amqp" in hint(mq, args)
    assert "lectern login" in hint(errors.Unauthorized("token expired", status=401), args)
    failed = errors.JobFailed({"payload": {"reason": "model down", "retryable": True}})
    assert hint(failed, args) == "the job failed: model down (retrying may help)"
    assert exit_codes.for_error(failed) == exit_codes.FAILED
    timeout = errors.EventTimeout("no event for 5 s", idle=True)
    assert exit_codes.for_error(timeout) == exit_codes.TIMEOUT
    unroutable = errors.Unroutable("no queue", exchange="lectern.commands", routing_key="x.y")
    assert exit_codes.for_error(unroutable) == exit_codes.UNREACHABLE


def test_every_exit_code_is_documented() -> None:
    codes = {v for k, v in vars(exit_codes).items() if k.isupper() and isinstance(v, int)}
    assert codes == set(exit_codes.DESCRIPTIONS)
    assert len(codes) == len(exit_codes.DESCRIPTIONS)
