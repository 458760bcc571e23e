"""What the gateway accepts as text, and how it says what it refused.

PostgreSQL cannot store NUL characters, and UTF-8 cannot carry unpaired surrogates
(JSON can: ``"\\ud800"``), so such text used to travel to a service and come back
as a 500, or be accepted and fail the job later. It is refused at the edge instead,
as a 422 naming the field. Ids in paths and free text in queries get the same
treatment; numbers that reach an integer column are bounded.

Validation errors are answered without the ``input`` pydantic echoes: a refused
password is not sent back, a 4000-character text is not repeated, and text the
response could not even encode (a lone surrogate) cannot turn a 422 into a 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Path, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

PG_INT_MAX = 2**31 - 1  # a PostgreSQL integer (versions, counts)
PG_BIGINT_MAX = 2**63 - 1  # a PostgreSQL bigint (event sequence numbers)

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_text(value: str) -> str:
    """``value`` if it can be stored as text; a validation error saying why not."""
    if "\x00" in value:
        raise PydanticCustomError("text_nul", "must not contain NUL characters (\\u0000)")
    found = _SURROGATE.search(value)
    if found is not None:
        raise PydanticCustomError(
            "text_surrogate",
            "must be valid Unicode: an unpaired surrogate is at position {position}",
            {"position": found.start()},
        )
    return value


def check_id(value: str) -> str:
    """An id: storable text without control characters."""
    check_text(value)
    if _CONTROL.search(value):
        raise PydanticCustomError("id_control", "must not contain control characters")
    return value


def _check_nested(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        try:
            check_text(value)
        except PydanticCustomError as exc:
            if not where:
                raise
            context = {"where": where.lstrip("."), "problem": exc.message()}
            raise PydanticCustomError(exc.type, "{where}: {problem}", context) from None
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _check_nested(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nested(key, where)
            _check_nested(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_nested(item, f"{where}[{index}]")


class Input(BaseModel):
    """A request body: unknown fields refused, every text field storable (see above)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        _check_nested(value)
        return value


CourseId = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(check_id)]
ResourceId = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(check_id)]
SearchText = Annotated[str, AfterValidator(check_text), Query(max_length=200)]
OptionalSearchText = Annotated[
    str | None, AfterValidator(lambda v: v if v is None else check_text(v)), Query(max_length=200)
]


def _printable(part: Any) -> Any:
    """A location part or message as JSON can carry it (a surrogate becomes ``\\udxxx``)."""
    if isinstance(part, str):
        return part.encode("utf-8", "backslashreplace").decode("utf-8")
    return part


def describe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as the API reports them: type, location and message, no input."""
    return [
        {
            "type": error.get("type"),
            "loc": [_printable(part) for part in error.get("loc", ())],
            "msg": _printable(str(error.get("msg", ""))),
        }
        for error in errors
    ]


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a request that does not fit the schema, without echoing input."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": jsonable_encoder(describe_errors(exc.errors()))},
    )
