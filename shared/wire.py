"""Reading a delivery from the wire without trusting it.

Anyone who can publish to the broker can send anything: bytes that are not JSON, a body
of many megabytes, headers of any type, properties that are not UTF-8. What comes in is
checked here before a handler sees it, and every function that reports on a message
(its schema, its job, its attempt count) answers without raising, whatever it is given.

- :func:`decode_envelope` is the decoder of every durable subscriber: a JSON object in
  UTF-8, no ``NaN``, no NUL character or lone surrogate in any string (PostgreSQL stores
  neither), or :class:`InvalidBody` naming what is wrong (dead-lettered at once).
- :func:`read_envelope` reads the envelope's text fields (``job_id``, ``schema``...) of
  any body, reading only the first 64 KiB of one larger than the limit.
- :func:`attempt_of` and :func:`redeliveries_of` read the retry counters of headers
  that may hold anything.
- :func:`publishable_headers` and :func:`property_text` make what was received safe to
  publish again (to the retry or dead-letter queue).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
ENVELOPE_SCAN_BYTES = 64 * 1024
ATTEMPT_HEADER = "x-lectern-attempt"
JSON_MEDIA_TYPE = "application/json"

_SCALAR = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null")
_WS = " \t\r\n"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidBody(Exception):
    """The body can never be handled: not a JSON object, too large, unstorable text."""

    retryable = False


def size_error(size: int, limit: int) -> InvalidBody | None:
    """The error for a body of ``size`` bytes when it exceeds ``limit``, else None."""
    if size <= limit:
        return None
    return InvalidBody(f"message of {size} bytes exceeds the limit of {limit} bytes")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(value), type(value).__name__
    )


def _unstorable_text(data: dict[str, Any]) -> str | None:
    """Where the first string PostgreSQL cannot store is (NUL, lone surrogate), if any."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                problem = _text_problem(str(key))
                if problem:
                    return f"a key at {_cut(where)} {problem}"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                return f"{_cut(path)} {problem}"
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def decode_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`InvalidBody` saying why it is not one."""
    if not body.strip():
        raise InvalidBody("body is empty: a JSON object is expected")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"body is not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidBody("body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN, integers of thousands of digits
        raise InvalidBody(f"body is not valid JSON: {_cut(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise InvalidBody(f"body is a JSON {_kind(data)}, not an object")
    problem = _unstorable_text(data)
    if problem:
        raise InvalidBody(f"body: {problem}")
    return data


def check_content_type(content_type: Any) -> None:
    """Refuse a content type that says the body is not JSON (none at all is accepted)."""
    if content_type is None or content_type == "":
        return
    if not isinstance(content_type, str):
        raise InvalidBody(f"content-type {content_type!r} is not {JSON_MEDIA_TYPE}")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE and not media.endswith("+json"):
        raise InvalidBody(f"content-type {_cut(content_type, 100)!r} is not {JSON_MEDIA_TYPE}")


async def decode_envelope(msg: Any) -> dict[str, Any]:
    """FastStream decoder of the durable subscribers: the body as a JSON object.

    Whatever the body, the answer is an object or :class:`InvalidBody` (permanent), so
    the retry middleware dead-letters it at once with the reason.
    """
    check_content_type(getattr(msg, "content_type", None))
    return decode_body(msg.body)


TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})


async def parse_delivery(message: Any, original: Any) -> Any:
    """FastStream parser of every subscriber: the default one, without trace headers
    that are not text.

    OpenTelemetry's propagators (FastStream's telemetry middleware, before any handler)
    fail on a ``traceparent`` that is a number or a table; the message would then be
    refused whatever it says. Text that is not a valid trace context is already ignored.
    """
    msg = await original(message)
    headers = msg.headers or {}
    if any(not isinstance(headers[k], str) for k in TRACE_HEADERS & headers.keys()):
        msg.headers = {
            k: v for k, v in headers.items() if k not in TRACE_HEADERS or isinstance(v, str)
        }
    return msg


def read_envelope(body: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The top-level fields of a JSON object body; {} when it is not one. Never raises.

    A body over ``max_bytes`` is not parsed, nor one that is not valid JSON (cut short,
    nested too deeply): the text fields found in its first 64 KiB are returned, so a
    job named before the damage can still be told (the envelope comes before the
    payload in Lectern's messages).
    """
    if len(body) > max_bytes:
        return scan_envelope(body)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return scan_envelope(body)
    return data if isinstance(data, dict) else {}


def scan_envelope(body: bytes, limit: int = ENVELOPE_SCAN_BYTES) -> dict[str, str]:
    """The top-level string fields within the first ``limit`` bytes of a JSON object.

    Nested values are skipped without recursion; scanning stops at the first thing
    that is not JSON or at the end of the prefix. Never raises.
    """
    text = body[:limit].decode("utf-8", errors="ignore")
    found: dict[str, str] = {}
    i = _skip_ws(text, 0)
    if not text.startswith("{", i):
        return found
    i += 1
    while True:
        i = _skip_ws(text, i)
        if not text.startswith('"', i):
            return found
        try:
            key, i = scanstring(text, i + 1)
        except ValueError:
            return found
        i = _skip_ws(text, i)
        if not text.startswith(":", i):
            return found
        i = _skip_ws(text, i + 1)
        if i >= len(text):
            return found
        if text[i] == '"':
            try:
                value, i = scanstring(text, i + 1)
            except ValueError:
                return found
            found[key] = value
        elif text[i] in "{[":
            i = _skip_nested(text, i)
        else:
            match = _SCALAR.match(text, i)
            i = match.end() if match else -1
        if i < 0:
            return found
        i = _skip_ws(text, i)
        if not text.startswith(",", i):
            return found
        i += 1


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _skip_nested(text: str, i: int) -> int:
    """Index after the object or array starting at ``i``; -1 if it does not end in ``text``."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            try:
                _, i = scanstring(text, i + 1)
            except ValueError:
                return -1
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def clean_text(value: Any, limit: int = 200) -> str | None:
    """``value`` as text safe to store and publish (no control characters, valid UTF-8,
    at most ``limit`` characters), or None when it is not a non-empty string."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub("", value).encode("utf-8", errors="replace").decode("utf-8")
    text = text.strip()[:limit]
    return text or None


def attempt_of(headers: Mapping[str, Any] | None, max_attempts: int) -> int:
    """The delivery attempt (from 1) our retry header records; 1 when it holds anything
    we could not have written (not an integer from 1 to ``max_attempts``)."""
    value = (headers or {}).get(ATTEMPT_HEADER)
    if isinstance(value, bool) or not isinstance(value, int):
        return 1
    return value if 1 <= value <= max_attempts else 1


def redeliveries_of(headers: Mapping[str, Any] | None) -> int:
    """The broker's redelivery count (``x-delivery-count``), 0 when absent or garbage."""
    value = (headers or {}).get("x-delivery-count")
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), 1_000_000)


def publishable_headers(value: Any) -> Any:
    """Received headers in a form the AMQP encoder accepts again.

    A long string that was not UTF-8 arrives as ``bytes``, which the encoder refuses:
    it goes back out as a byte array, content intact.
    """
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, Mapping):
        return {str(k): publishable_headers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [publishable_headers(v) for v in value]
    return value


def property_text(value: Any) -> str | None:
    """A message property (message_id, correlation_id, content_type) that can be sent
    again: text of at most 255 UTF-8 bytes, or None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value:
        return None
    return value.encode("utf-8", errors="replace")[:255].decode("utf-8", errors="ignore")
