"""The one way Lectern services call an LLM: streamed, retried, measured.

:class:`LLMClient` calls a model with streaming, retries with back-off (honouring
``Retry-After``), fallback models, JSON output validated by pydantic with one repair
round, Prometheus metrics, an OpenTelemetry span per call and an
:class:`~shared.contracts.llm.LLMCallCompletedPayload` per call.

Each model has a route (:func:`route_of`): ``openai/*`` models are streamed over HTTP
by :mod:`shared.llm.openai_http` (OpenAI and every OpenAI-compatible server),
``offline/*`` models are answered in-process, and every other provider goes through
``litellm.acompletion``. litellm is imported only for a model that needs it: its import
costs about 140 MB and 4 s, which a content worker holding a thousand generations
cannot spare (``LECTERN_LLM_DIRECT=false`` sends every model through litellm).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, Literal, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError

from shared.contracts.llm import (
    OUTPUT_PREVIEW_MAX,
    VARIABLES_PREVIEW_MAX,
    LLMCallCompletedPayload,
)
from shared.llm import load_litellm, metrics, openai_http, prices
from shared.settings import LecternSettings

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
ErrorKind = Literal["rate_limit", "timeout", "provider_error", "invalid_output"]
Route = Literal["openai", "offline", "litellm"]

OFFLINE_PREFIX = "offline/"
OPENAI_PREFIX = "openai/"
MAX_RETRY_AFTER_S = 60.0
# Mirrors shared.llm.offline.JSON_SCHEMA_HEADER; kept literal so this module
# does not import litellm at import time.
_JSON_SCHEMA_HEADER = "JSON schema:"
JSON_INSTRUCTION = (
    "Answer with JSON only: a single JSON object, without prose or code fences, "
    f"that validates against this {_JSON_SCHEMA_HEADER}\n"
)
REPAIR_INSTRUCTION = (
    "Your previous answer was not valid JSON for the schema: {error}. "
    "Please repair it and answer with JSON only."
)
_REPAIR_ERROR_MAX = 1500


class LLMError(Exception):
    """An LLM call failed for good.

    ``kind`` is ``rate_limit``, ``timeout``, ``provider_error`` or
    ``invalid_output``; ``retryable`` tells whether trying the whole call again
    later may succeed (retries inside the client were exhausted).
    """

    def __init__(self, message: str, kind: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retryable = retryable


class StructuredOutputError(LLMError):
    """The model's answer was not valid for the schema, even after a repair attempt."""

    def __init__(self, message: str, *, validation_error: str = "", text: str = "") -> None:
        super().__init__(message, "invalid_output", False)
        self.validation_error = validation_error
        self.text = text


@dataclass
class LLMResult:
    """The outcome of a successful call.

    ``latency_ms`` is the wall time of the whole call, retries and back-off
    included; ``ttft_ms`` counts from the start of the attempt that answered.
    For a repaired structured call, tokens, cost, latency and attempts add up
    both calls and ``text``/``model`` are the repair's.
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_ms: float
    ttft_ms: float | None
    attempts: int
    fallback_used: bool
    repaired: bool = False


@dataclass
class _Call:
    """Everything about one logical call that does not change between attempts."""

    task: str
    messages: list[dict[str, Any]]
    prompt_name: str
    prompt_version: str
    on_delta: Callable[[str], Awaitable[None]] | None
    on_attempt: Callable[[int], Awaitable[None]] | None
    job_id: str | None
    course_id: str | None
    variables: dict[str, Any] | None
    temperature: float | None
    max_tokens: int | None
    model: str | None = None  # the prompt's model, tried before the configured ones
    experiment_id: str | None = None
    prompt_fallback: bool = False
    step: str | None = None
    on_done: Callable[[], Awaitable[None]] | None = None


@dataclass
class _Answer:
    text: str
    response_model: str | None
    input_tokens: int
    output_tokens: int
    ttft_s: float | None


@dataclass
class _Check:
    value: Any
    error: str | None
    quality: dict[str, Any] = field(default_factory=dict)


class IncompleteStreamError(ConnectionError):
    """The provider ended a stream without saying it had finished (no finish reason).

    A connection closed cleanly mid-answer (a proxy or a provider giving up) looks like
    a normal end to the HTTP client; the text is then a truncated answer. Retryable.
    """


class _CallbackError(Exception):
    """Wraps an exception raised by ``on_delta`` so it is not taken for a provider error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _ended_unfinished(response: Any) -> bool:
    """Whether a finished litellm stream never got a finish reason from the provider.

    litellm's stream wrapper makes up ``finish_reason="stop"`` for its last chunk either
    way; what the provider really sent is on the wrapper (``received_finish_reason``,
    or ``intermittent_finish_reason`` for providers that send it before the end). A
    response without these attributes (not a litellm stream) is taken as finished.
    """
    if not hasattr(response, "received_finish_reason"):
        return False
    return (
        response.received_finish_reason is None
        and getattr(response, "intermittent_finish_reason", None) is None
    )


class _Piece:
    """One chunk of an answer, whichever stream it came from."""

    __slots__ = ("finished", "model", "text", "usage")

    def __init__(
        self, text: str | None, usage: Any, model: str | None, finished: bool = False
    ) -> None:
        self.text, self.usage, self.model, self.finished = text, usage, model, finished


class _WrappedStream:
    """litellm's own stream (``CustomStreamWrapper``): any provider, at litellm's cost of
    about 70 µs of CPU per chunk (each one rebuilt as its pydantic response objects)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._chunks = response.__aiter__()
        self._received = 0
        self.trimmed = False

    @property
    def finished(self) -> bool:
        return not _ended_unfinished(self._response)

    def __aiter__(self) -> _WrappedStream:
        return self

    async def __anext__(self) -> _Piece:
        chunk = await anext(self._chunks)
        self._received += 1
        if self._received % _TRIM_EVERY == 0:
            self.trimmed = _forget_streamed_chunks(self._response) or self.trimmed
        choices = getattr(chunk, "choices", None) or []
        delta = getattr(choices[0], "delta", None) if choices else None
        return _Piece(
            getattr(delta, "content", None) if delta is not None else None,
            getattr(chunk, "usage", None) or None,
            getattr(chunk, "model", None),
        )

    def usage_is_partial(self) -> bool:
        """litellm counted only the chunks it still had (see _forget_streamed_chunks)."""
        return self.trimmed and not _provider_reported_usage(self._response)


class _ProviderStream:
    """A stream of chunks of a kind this client knows: an OpenAI-style event stream's
    JSON (the ``openai/*`` route), the OpenAI SDK's ``ChatCompletionChunk`` (OpenAI,
    Azure and OpenAI-compatible servers under litellm) or the offline model's own
    chunks. On the litellm route, the provider's stream under litellm's wrapper is read
    so where it is of these kinds.

    Under litellm, litellm still builds and sends the request (its providers,
    parameters, keys and errors); only the per-chunk normalising is skipped, which cost
    most of the CPU of a streamed call (a quiz of 123 chunks from the offline model:
    11 ms through the wrapper, 2.6 ms read directly). A failure while reading is turned
    into the exception litellm's wrapper would raise, so retries see the same errors.
    Not carried over: litellm's check for a model repeating one chunk without end (the
    idle timeout and ``max_tokens`` still bound such an answer).
    """

    def __init__(self, response: Any, stream: Any, read: Callable[[Any], _Piece | None]) -> None:
        self._response = response  # litellm's wrapper, or None (a direct route)
        self._items = stream.__aiter__()
        self._read = read
        self.finished = False

    def __aiter__(self) -> _ProviderStream:
        return self

    async def __anext__(self) -> _Piece:
        while True:
            try:
                item = await anext(self._items)
            except StopAsyncIteration:
                raise
            except Exception as exc:
                raise_as_litellm = getattr(self._response, "_handle_stream_fallback_error", None)
                if raise_as_litellm is None:
                    raise
                raise_as_litellm(exc)  # raises litellm's mapping of exc
                raise  # (it always raises)
            piece = self._read(item)
            if piece is None:
                continue
            self.finished = self.finished or piece.finished
            return piece

    @staticmethod
    def usage_is_partial() -> bool:
        return False


def _openai_piece(chunk: Any) -> _Piece:
    """A ``ChatCompletionChunk`` as a piece (usage on the last, choice-less one)."""
    if not chunk.choices:
        return _Piece(None, chunk.usage, chunk.model)
    choice = chunk.choices[0]
    text = choice.delta.content if choice.delta is not None else None
    return _Piece(text, chunk.usage, chunk.model, choice.finish_reason is not None)


def _chunk_piece(chunk: dict[str, Any]) -> _Piece:
    """A chat completion chunk as sent (its JSON), as a piece (usage on the last one)."""
    usage = _usage(chunk.get("usage"))
    choices = chunk.get("choices")
    if not choices:
        return _Piece(None, usage, chunk.get("model"))
    choice = choices[0]
    delta = choice.get("delta") or {}
    finished = choice.get("finish_reason") is not None
    return _Piece(delta.get("content"), usage, chunk.get("model"), finished)


def _offline_piece(chunk: Any) -> _Piece | None:
    """One of the offline model's chunks (``GenericStreamingChunk``) as a piece."""
    if not isinstance(chunk, dict):
        return None
    return _Piece(
        chunk.get("text") or None, _usage(chunk.get("usage")), None, bool(chunk.get("is_finished"))
    )


def _usage(usage: Any) -> Any:
    """A usage dict as the attributes the SDK's usage objects have (None without one)."""
    return SimpleNamespace(**usage) if isinstance(usage, dict) else None


def _pieces(response: Any) -> _WrappedStream | _ProviderStream:
    """How to read ``response`` (from ``litellm.acompletion(stream=True)``): the provider's
    own stream where its chunks are known, litellm's wrapper otherwise."""
    stream = getattr(response, "completion_stream", None)
    if stream is not None:
        async_stream, chat_chunk, offline = _known_streams()
        if isinstance(stream, async_stream) and getattr(stream, "_cast_to", None) is chat_chunk:
            return _ProviderStream(response, stream, _openai_piece)
        if getattr(response, "custom_llm_provider", None) == offline and inspect.isasyncgen(stream):
            return _ProviderStream(response, stream, _offline_piece)
    return _WrappedStream(response)


@cache
def _known_streams() -> tuple[type, type, str]:
    """The OpenAI SDK's stream and chunk types and the offline provider's name (looked
    up once, after litellm has loaded the SDK)."""
    import openai
    from openai.types.chat import ChatCompletionChunk

    from shared.llm.offline import PROVIDER

    return openai.AsyncStream, ChatCompletionChunk, PROVIDER


# litellm's stream wrapper keeps every chunk it returns (``chunks``), to rebuild the whole
# answer for its own logging once the stream ends: a few KB of pydantic objects per chunk,
# hundreds per answer, which made most of an in-flight call's memory (about 400 KB for a
# 1,500-character lesson in 85 chunks). We gather the text ourselves and register no
# litellm callbacks, so all but the last few are dropped as the stream goes.
_TRIM_EVERY = 8  # chunks between trims
_KEEP_LAST = 2  # litellm compares the last two (repeated-output check)


def _forget_streamed_chunks(response: Any) -> bool:
    """Drop the chunks ``response`` (a litellm stream) kept, but the last ones and any
    carrying usage; whether any were dropped. Anything else is left alone."""
    chunks = getattr(response, "chunks", None)
    if not isinstance(chunks, list) or len(chunks) <= _KEEP_LAST:
        return False
    head = chunks[:-_KEEP_LAST]
    kept = [c for c in head if getattr(c, "usage", None) is not None]
    chunks[:] = kept + chunks[-_KEEP_LAST:]
    return len(kept) < len(head)


def _provider_reported_usage(response: Any) -> bool:
    """Whether a litellm stream got usage from the provider (a chunk that carried it).

    Without it litellm counts the tokens of the chunks it kept, which after
    :func:`_forget_streamed_chunks` is not the whole answer: the caller counts them then.
    """
    chunks = getattr(response, "chunks", None)
    return isinstance(chunks, list) and any(getattr(c, "usage", None) for c in chunks)


def is_offline(model: str) -> bool:
    """Whether ``model`` is served by the built-in offline provider."""
    return model.startswith(OFFLINE_PREFIX)


def route_of(model: str, *, direct: bool = True) -> Route:
    """How ``model`` is called: ``offline`` (in-process), ``openai`` (HTTP to an
    OpenAI-compatible server, for ``openai/*``) or ``litellm`` (any other provider, or
    every model when not ``direct``)."""
    if not direct:
        return "litellm"
    if model.startswith(OFFLINE_PREFIX):
        return "offline"
    if model.startswith(OPENAI_PREFIX):
        return "openai"
    return "litellm"


# The OpenAI SDK's exceptions (litellm's derive from them) and what they mean, in order:
# APITimeoutError derives from APIConnectionError, so it comes first.
_SDK_ERRORS: tuple[tuple[tuple[str, ...], ErrorKind, bool], ...] = (
    (("APITimeoutError",), "timeout", True),
    (("RateLimitError",), "rate_limit", True),
    (
        (
            "AuthenticationError",
            "PermissionDeniedError",
            "BadRequestError",
            "NotFoundError",
            "UnprocessableEntityError",
        ),
        "provider_error",
        False,
    ),
    (("InternalServerError", "APIConnectionError"), "provider_error", True),
)
_STATUS_ERRORS: dict[int, tuple[ErrorKind, bool]] = {
    429: ("rate_limit", True),
    408: ("timeout", True),
}


def classify_error(exc: BaseException) -> tuple[ErrorKind, bool]:
    """The error kind of a failed attempt and whether retrying it may help.

    litellm's exceptions derive from the OpenAI SDK's, so one set of checks covers them;
    the ``openai/*`` route's own errors carry a status, or are connection errors.
    Neither library is imported here (an exception of theirs means it is loaded).
    """
    if isinstance(exc, TimeoutError):
        return "timeout", True
    openai = sys.modules.get("openai")
    if openai is not None:
        for names, kind, retryable in _SDK_ERRORS:
            if isinstance(exc, tuple(getattr(openai, name) for name in names)):
                return kind, retryable
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return _STATUS_ERRORS.get(status, ("provider_error", status >= 500))
    if isinstance(exc, openai_http.ProviderError) or (
        openai is not None and isinstance(exc, openai.APIError)
    ):
        # no status: a broken connection, or an error the provider sent inside a stream
        # (overloaded, mostly)
        return "provider_error", True
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.TimeoutException):
        return "timeout", True
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return "provider_error", True  # the SDK leaves a broken stream's errors as they are
    if isinstance(exc, ConnectionError):
        return "provider_error", True
    return "provider_error", False


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds to wait that the error's ``Retry-After`` header asks for, if any.

    litellm (1.100.5) keeps the provider's headers on ``litellm_response_headers``;
    the ``response`` of its ``RateLimitError`` is rebuilt without them.
    """
    sources = (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    )
    for headers in sources:
        if not headers:
            continue
        try:
            lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        except (AttributeError, TypeError):
            continue
        if "retry-after-ms" in lowered:
            with suppress(ValueError):
                return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            return _parse_retry_after(lowered["retry-after"])
    return None


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def extract_json(text: str) -> str | None:
    """The outermost ``{...}`` of ``text``, after removing markdown code fences."""
    fenced = re.search(r"```(?:json|JSON)?\s*\n?(.*?)```", text, re.DOTALL)
    candidate = fenced.group(1) if fenced else text
    start, end = candidate.find("{"), candidate.rfind("}")
    if start == -1 or end <= start:
        # A fence may be unclosed (a cut stream): fall back to the whole text.
        start, end = text.find("{"), text.rfind("}")
        if start == -1 or end <= start:
            return None
        candidate = text
    return candidate[start : end + 1]


def _check(schema: type[T], text: str, *, repaired: bool) -> _Check:
    candidate = extract_json(text)
    if candidate is None:
        return _Check(
            None,
            "no JSON object found in the answer",
            {"valid_json": False, "schema_valid": False, "repaired": repaired},
        )
    try:
        json.loads(candidate)
    except ValueError as exc:
        return _Check(
            None,
            f"invalid JSON: {exc}",
            {"valid_json": False, "schema_valid": False, "repaired": repaired},
        )
    try:
        value = schema.model_validate_json(candidate)
    except ValidationError as exc:
        return _Check(
            None, str(exc), {"valid_json": True, "schema_valid": False, "repaired": repaired}
        )
    return _Check(value, None, {"valid_json": True, "schema_valid": True, "repaired": repaired})


@cache
def _schema_json(schema: type[BaseModel]) -> str:
    """The JSON schema appended to a structured call's system message, built once per
    model: pydantic builds it afresh at every call (a few ms for a quiz's nested model)."""
    return json.dumps(schema.model_json_schema(), ensure_ascii=False)


def _with_system_suffix(messages: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    for message in out:
        if message.get("role") == "system" and isinstance(message.get("content"), str):
            message["content"] = f"{message['content'].rstrip()}\n\n{suffix}"
            return out
    return [{"role": "system", "content": suffix}, *out]


def _preview(value: Any, limit: int) -> str:
    if value is None:
        return ""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    )
    return text[:limit]


def _trace_id(span: Span) -> str | None:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class LLMClient:
    """Calls the configured model through litellm for one service.

    Args:
        settings: model, fallbacks, API base/key, timeout and retry budget.
        service: the calling service, used in metrics and events.
        on_call_completed: awaited with a payload after every call (success or
            final failure), typically to publish ``LLMCallCompleted``; its
            exceptions are logged, never raised.

    The back-off between retries is ``backoff_base_s * 2**n`` (with jitter,
    capped at ``backoff_max_s``) unless the provider sends ``Retry-After``.
    """

    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def __init__(
        self,
        settings: LecternSettings,
        *,
        service: str,
        on_call_completed: Callable[[LLMCallCompletedPayload], Awaitable[None]] | None = None,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._service = service
        self._on_call_completed = on_call_completed
        # raises to refuse a call before anything is spent (e.g. a spent token budget)
        self._before_call = before_call
        self._tracer = trace.get_tracer("lectern.llm")
        self._unpriced: set[str] = set()
        # the openai/* route's HTTP client, made on its first call
        self._http: openai_http.ChatHTTP | None = None

    @property
    def models(self) -> list[str]:
        """The primary model followed by the fallback models, without repeats."""
        ordered = [self._settings.llm_model, *self._settings.llm_fallback_models]
        return list(dict.fromkeys(m for m in ordered if m))

    def route(self, model: str) -> Route:
        """How this client calls ``model`` (see :func:`route_of`)."""
        return route_of(model, direct=self._settings.llm_direct)

    async def warm_up(self) -> None:
        """Load what the configured models' routes need, so the first call is not slow.

        Importing litellm takes seconds and its first completion loads more modules
        lazily (so it makes one offline call); aiohttp, for ``openai/*``, takes a
        fraction of a second. A worker does this before it reports ready, not inside a request.
        """
        from shared.llm.offline import LATENCY_METADATA_KEY, task_marker
        from shared.settings import OFFLINE_MODEL

        routes = {self.route(model) for model in self.models}
        if "openai" in routes:
            await asyncio.to_thread(openai_http.load)
        if "litellm" in routes:
            litellm = await asyncio.to_thread(load_litellm)
            await litellm.acompletion(
                model=OFFLINE_MODEL,
                messages=[{"role": "system", "content": task_marker("warm_up")}],
                metadata={LATENCY_METADATA_KEY: 0},
            )

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """Price of a call of this size on the primary model (None when unpriced)."""
        model = self.models[0]
        return self._cost(model, _Answer("", None, input_tokens, output_tokens, None))

    async def stream(
        self,
        *,
        task: str,
        messages: list[dict[str, str]],
        prompt_name: str,
        prompt_version: str,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
        job_id: str | None = None,
        course_id: str | None = None,
        variables: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_attempt: Callable[[int], Awaitable[None]] | None = None,
        model: str | None = None,
        experiment_id: str | None = None,
        prompt_fallback: bool = False,
        step: str | None = None,
        on_done: Callable[[], Awaitable[None]] | None = None,
    ) -> LLMResult:
        """Stream a chat completion, calling ``on_delta`` with each piece of text.

        ``model`` (a prompt's own model) is tried before the configured models;
        ``experiment_id``, ``prompt_fallback`` and ``step`` are reported in the
        ``llm.call_completed`` event.

        ``on_attempt(n)`` is awaited before every attempt, ``n`` counting from 1;
        when it is called with ``n > 1`` the text streamed so far is void (the
        stream was cut and is starting over). ``on_done()`` is awaited once an
        answer is complete, side by side with publishing ``llm.call_completed``
        (a streamer flushes its last text then, rather than after that publish).
        Exceptions raised by ``on_delta``, ``on_attempt`` or ``on_done`` propagate
        unchanged.

        Raises:
            LLMError: every attempt on every model failed, or a non-retryable
                error (authentication, bad request) occurred.
        """
        call = _Call(
            task=task,
            messages=[dict(m) for m in messages],
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            on_delta=on_delta,
            on_attempt=on_attempt,
            job_id=job_id,
            course_id=course_id,
            variables=variables,
            temperature=temperature,
            max_tokens=max_tokens,
            model=model,
            experiment_id=experiment_id,
            prompt_fallback=prompt_fallback,
            step=step,
            on_done=on_done,
        )
        result, _ = await self._invoke(call, attempt_offset=0, check=None)
        return result

    async def structured(
        self,
        *,
        task: str,
        messages: list[dict[str, str]],
        schema: type[T],
        prompt_name: str,
        prompt_version: str,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
        job_id: str | None = None,
        course_id: str | None = None,
        variables: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_attempt: Callable[[int], Awaitable[None]] | None = None,
        model: str | None = None,
        experiment_id: str | None = None,
        prompt_fallback: bool = False,
        step: str | None = None,
        on_done: Callable[[], Awaitable[None]] | None = None,
    ) -> tuple[T, LLMResult]:
        """Ask for JSON matching ``schema`` and return it validated, with the call's result.

        The JSON schema is appended to the system message. An answer that does
        not validate gets one repair round (the broken answer and the error are
        sent back); ``on_attempt`` then announces a new attempt, so streamed
        text must be discarded as for a retry.

        Raises:
            StructuredOutputError: the answer was still invalid after the repair.
            LLMError: the provider failed (see :meth:`stream`).
        """
        prepared = _with_system_suffix(list(messages), JSON_INSTRUCTION + _schema_json(schema))
        call = _Call(
            task=task,
            messages=prepared,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            on_delta=on_delta,
            on_attempt=on_attempt,
            job_id=job_id,
            course_id=course_id,
            variables=variables,
            temperature=temperature,
            max_tokens=max_tokens,
            model=model,
            experiment_id=experiment_id,
            prompt_fallback=prompt_fallback,
            step=step,
            on_done=on_done,
        )
        first, first_check = await self._invoke(
            call, attempt_offset=0, check=lambda text: _check(schema, text, repaired=False)
        )
        assert first_check is not None
        if first_check.error is None:
            return first_check.value, first

        error = first_check.error[:_REPAIR_ERROR_MAX]
        repair_call = replace(
            call,
            messages=[
                *prepared,
                {"role": "assistant", "content": first.text},
                {"role": "user", "content": REPAIR_INSTRUCTION.format(error=error)},
            ],
        )
        second, second_check = await self._invoke(
            repair_call,
            attempt_offset=first.attempts,
            check=lambda text: _check(schema, text, repaired=True),
        )
        assert second_check is not None
        if second_check.error is not None:
            raise StructuredOutputError(
                f"{task}: answer still invalid for {schema.__name__} after a repair: "
                f"{second_check.error[:_REPAIR_ERROR_MAX]}",
                validation_error=second_check.error,
                text=second.text,
            )
        both_priced = first.cost_usd is not None and second.cost_usd is not None
        combined = LLMResult(
            text=second.text,
            model=second.model,
            input_tokens=first.input_tokens + second.input_tokens,
            output_tokens=first.output_tokens + second.output_tokens,
            cost_usd=(first.cost_usd or 0.0) + (second.cost_usd or 0.0) if both_priced else None,
            latency_ms=first.latency_ms + second.latency_ms,
            ttft_ms=first.ttft_ms,
            attempts=first.attempts + second.attempts,
            fallback_used=first.fallback_used or second.fallback_used,
            repaired=True,
        )
        return second_check.value, combined

    # ------------------------------------------------------------------ internals

    async def _invoke(
        self,
        call: _Call,
        *,
        attempt_offset: int,
        check: Callable[[str], _Check] | None,
    ) -> tuple[LLMResult, _Check | None]:
        """One logical call: attempts, retries and fallbacks, then metrics and the event."""
        if self._before_call is not None:
            self._before_call()
        with metrics.IN_FLIGHT.labels(self._service, call.task).track_inprogress():
            return await self._invoke_tracked(call, attempt_offset=attempt_offset, check=check)

    async def _invoke_tracked(
        self,
        call: _Call,
        *,
        attempt_offset: int,
        check: Callable[[str], _Check] | None,
    ) -> tuple[LLMResult, _Check | None]:
        models = (
            self.models if call.model is None else list(dict.fromkeys([call.model, *self.models]))
        )
        requested = models[0]
        max_retries = max(0, self._settings.llm_max_retries)
        started = time.perf_counter()
        attempts = 0
        fallback_used = False
        model = requested
        answer: _Answer | None = None
        result: LLMResult | None = None
        outcome: _Check | None = None
        last_error: BaseException | None = None
        last_kind: ErrorKind = "provider_error"
        last_retryable = False

        with self._tracer.start_as_current_span(f"chat {requested}", kind=SpanKind.CLIENT) as span:
            self._start_span(span, call, requested)
            trace_id = _trace_id(span)
            for index, model in enumerate(models):
                if index > 0:
                    fallback_used = True
                    metrics.FALLBACKS.labels(self._service, call.task).inc()
                    span.add_event("lectern.llm.fallback", {"model": model})
                    logger.warning("LLM %s: falling back to %s", call.task, model)
                for retry in range(max_retries + 1):
                    attempts += 1
                    if call.on_attempt is not None:
                        await call.on_attempt(attempt_offset + attempts)
                    try:
                        answer = await self._attempt(model, call)
                    except _CallbackError as exc:
                        raise exc.original from None
                    except Exception as exc:
                        last_error = exc
                        last_kind, last_retryable = classify_error(exc)
                        metrics.ERRORS.labels(self._service, call.task, last_kind).inc()
                        if not last_retryable or retry == max_retries:
                            logger.warning(
                                "LLM %s on %s failed (%s): %s", call.task, model, last_kind, exc
                            )
                            break
                        wait = self._backoff(retry, retry_after_seconds(exc))
                        metrics.RETRIES.labels(self._service, call.task).inc()
                        span.add_event(
                            "lectern.llm.retry",
                            {"attempt": attempts, "error.type": last_kind, "wait_s": wait},
                        )
                        logger.info(
                            "LLM %s on %s: %s, retrying in %.2fs", call.task, model, last_kind, wait
                        )
                        await asyncio.sleep(wait)
                    else:
                        break
                prompt_model = call.model is not None and index == 0 and model != self.models[0]
                if answer is not None or (not last_retryable and not prompt_model):
                    # Non-retryable errors (auth, bad request) would fail on fallbacks too;
                    # but a prompt's own model may be wrong (a typo, no key for it), so the
                    # configured models still get their turn.
                    break

            elapsed = time.perf_counter() - started
            if answer is None:
                payload = self._failure(
                    span, call, model, requested, last_kind, attempts, fallback_used, elapsed
                )
                payload = payload.model_copy(update={"trace_id": trace_id})
            else:
                result, outcome, payload = self._success(
                    span,
                    call,
                    model,
                    requested,
                    answer,
                    attempts,
                    fallback_used,
                    elapsed,
                    check,
                )
                payload = payload.model_copy(update={"trace_id": trace_id})

        if result is not None and call.on_done is not None:
            # the answer is complete: the caller's last streamed text and the usage
            # event go out side by side, not one confirm after the other
            await asyncio.gather(self._emit(payload), call.on_done())
        else:
            await self._emit(payload)
        if result is None:
            raise LLMError(
                f"LLM call for {call.task} failed after {attempts} attempt(s) "
                f"({last_kind}): {last_error}",
                last_kind,
                last_retryable,
            ) from last_error
        return result, outcome

    def _start_span(self, span: Span, call: _Call, requested: str) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": requested,
            "lectern.task": call.task,
            "lectern.prompt.name": call.prompt_name,
            "lectern.prompt.version": call.prompt_version,
            "lectern.service": self._service,
        }
        if "/" in requested:
            attributes["gen_ai.provider.name"] = requested.split("/", 1)[0]
        if call.job_id is not None:
            attributes["lectern.job_id"] = call.job_id
        if call.course_id is not None:
            attributes["lectern.course_id"] = call.course_id
        if call.temperature is not None:
            attributes["gen_ai.request.temperature"] = call.temperature
        if call.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = call.max_tokens
        span.set_attributes(attributes)

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds before the next attempt; ``retry`` counts from 0."""
        if retry_after is not None:
            # A little jitter on top so many clients told the same time do not stampede.
            return min(MAX_RETRY_AFTER_S, retry_after + random.uniform(0, 0.1))
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**retry)
        return random.uniform(ceiling / 2, ceiling)

    def _request(self, model: str, call: _Call) -> dict[str, Any]:
        """The request for ``model``, shaped for its route: ``litellm.acompletion``'s
        arguments, the ``openai/*`` route's JSON body, or (offline) the messages."""
        from shared.llm.offline import LATENCY_METADATA_KEY, strip_task_marker, task_marker

        route = self.route(model)
        messages = [dict(m) for m in call.messages]
        # The marker is for the offline model only; never leak it to a provider.
        for message in messages:
            if message.get("role") == "system" and isinstance(message.get("content"), str):
                message["content"] = strip_task_marker(message["content"])
        kwargs: dict[str, Any] = {"model": model}
        if route == "openai":
            kwargs["model"] = model.removeprefix(OPENAI_PREFIX)
        if route != "offline":
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        if route == "litellm":
            kwargs["timeout"] = self._settings.llm_timeout_s
            # The OpenAI SDK under litellm retries 429/5xx twice by default; the
            # retries here must be the only ones so attempts are counted and visible.
            kwargs["max_retries"] = 0
        if is_offline(model):
            marker = task_marker(call.task)
            for message in messages:
                if message.get("role") == "system":
                    content = message.get("content")
                    if isinstance(content, list):
                        message["content"] = [{"type": "text", "text": marker}, *content]
                    else:
                        message["content"] = f"{marker}\n{content or ''}"
                    break
            else:
                messages.insert(0, {"role": "system", "content": marker})
            if route == "litellm":
                kwargs["metadata"] = {LATENCY_METADATA_KEY: self._settings.offline_latency_ms}
        elif route == "litellm":
            if self._settings.llm_api_base:
                kwargs["api_base"] = self._settings.llm_api_base
            if self._settings.llm_api_key:
                kwargs["api_key"] = self._settings.llm_api_key
        if call.temperature is not None:
            kwargs["temperature"] = call.temperature
        if call.max_tokens is not None:
            kwargs["max_tokens"] = call.max_tokens
        kwargs["messages"] = messages
        return kwargs

    def _chat_http(self) -> openai_http.ChatHTTP:
        """The ``openai/*`` route's HTTP client (built at its first call)."""
        if self._http is None:
            self._http = openai_http.ChatHTTP(self._settings)
        return self._http

    async def aclose(self) -> None:
        """Close the ``openai/*`` route's connections (on this event loop)."""
        if self._http is not None:
            await self._http.aclose()

    async def _open(
        self, model: str, request: dict[str, Any]
    ) -> tuple[Callable[[], Awaitable[Any]] | None, _WrappedStream | _ProviderStream]:
        """Send ``request`` to ``model``; how to close the answer's stream, and its pieces."""
        route = self.route(model)
        if route == "offline":
            from shared.llm import offline

            delay = offline.latency_s(self._settings.offline_latency_ms)
            chunks = offline.astream(request["messages"], delay)
            return chunks.aclose, _ProviderStream(None, chunks, _offline_piece)
        if route == "openai":
            if "aiohttp" not in sys.modules:  # a prompt's own model: not warmed up
                await asyncio.to_thread(openai_http.load)
            close, chunks = await self._chat_http().open(request)
            return close, _ProviderStream(None, chunks, _chunk_piece)
        if "litellm" not in sys.modules:  # a prompt's own model: import it off the loop
            await asyncio.to_thread(load_litellm)
        response = await load_litellm().acompletion(**request)
        return getattr(response, "aclose", None), _pieces(response)

    async def _attempt(self, model: str, call: _Call) -> _Answer:
        """One streamed request; raises whatever the route's library raises."""
        request = self._request(model, call)
        timeout = self._settings.llm_timeout_s
        started = time.perf_counter()
        close, pieces = await asyncio.wait_for(self._open(model, request), timeout)
        parts: list[str] = []
        usage: Any = None
        response_model: str | None = None
        ttft: float | None = None
        try:
            while True:
                try:
                    # An idle timeout: a stream may run long, but must not stall. (Not
                    # wait_for: that makes a task per chunk, hundreds per answer.)
                    async with asyncio.timeout(timeout):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    break
                response_model = response_model or piece.model
                if piece.usage:
                    usage = piece.usage
                text = piece.text
                if not text:
                    continue
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(text)
                if call.on_delta is not None:
                    try:
                        await call.on_delta(text)
                    except Exception as exc:
                        raise _CallbackError(exc) from exc
        finally:
            if close is not None:
                with suppress(Exception):
                    await close()
        if not pieces.finished:
            raise IncompleteStreamError(
                f"{model}: the stream ended after {sum(map(len, parts))} characters without "
                "a finish reason (cut mid-way)"
            )
        text = "".join(parts)
        if pieces.usage_is_partial():
            usage = None  # litellm counted only the chunks it still had: count them all
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if not input_tokens:
            input_tokens = self._count(model, messages=request["messages"])
        if not output_tokens and text:
            output_tokens = self._count(model, text=text)
        return _Answer(text, response_model, input_tokens, output_tokens, ttft)

    def _count(self, model: str, **what: Any) -> int:
        """Tokens of ``messages`` or ``text`` the provider did not report: litellm's count
        for its route's models, an estimate (a token per four characters) otherwise."""
        if self.route(model) == "litellm":
            try:
                return int(load_litellm().token_counter(model=model, **what))
            except Exception:
                pass
        from shared.llm.offline import count_tokens

        if "text" in what:
            return count_tokens(what["text"])
        return count_tokens(" ".join(str(m.get("content", "")) for m in what["messages"]))

    def _cost(self, model: str, answer: _Answer) -> float | None:
        if is_offline(model):
            return 0.0
        if model in self._unpriced:
            return None
        if self.route(model) == "openai":
            cost = prices.cost(model, answer.input_tokens, answer.output_tokens)
            if cost is None:
                self._unpriced.add(model)
            return cost
        try:
            litellm = load_litellm()
            response = litellm.ModelResponse(
                model=model,
                usage=litellm.Usage(
                    prompt_tokens=answer.input_tokens,
                    completion_tokens=answer.output_tokens,
                    total_tokens=answer.input_tokens + answer.output_tokens,
                ),
            )
            return float(litellm.completion_cost(completion_response=response, model=model))
        except Exception:
            # Unknown to litellm's price map (self-hosted or very new models).
            self._unpriced.add(model)
            return None

    def _success(
        self,
        span: Span,
        call: _Call,
        model: str,
        requested: str,
        answer: _Answer,
        attempts: int,
        fallback_used: bool,
        elapsed: float,
        check: Callable[[str], _Check] | None,
    ) -> tuple[LLMResult, _Check | None, LLMCallCompletedPayload]:
        cost = self._cost(model, answer)
        outcome = check(answer.text) if check is not None else None
        invalid = outcome is not None and outcome.error is not None
        status = "error" if invalid else "ok"
        labels = (self._service, call.task, model)

        metrics.TOKENS.labels(*labels, call.prompt_version, "input").inc(answer.input_tokens)
        metrics.TOKENS.labels(*labels, call.prompt_version, "output").inc(answer.output_tokens)
        if cost:
            metrics.COST_USD.labels(*labels).inc(cost)
        metrics.REQUEST_DURATION.labels(*labels, status).observe(elapsed)
        if answer.ttft_s is not None:
            metrics.TIME_TO_FIRST_TOKEN.labels(*labels).observe(answer.ttft_s)
        if invalid:
            metrics.ERRORS.labels(self._service, call.task, "invalid_output").inc()

        span.set_attributes(
            {
                "gen_ai.response.model": answer.response_model or model,
                "gen_ai.usage.input_tokens": answer.input_tokens,
                "gen_ai.usage.output_tokens": answer.output_tokens,
                "lectern.llm.model": model,
                "lectern.llm.attempts": attempts,
                "lectern.llm.fallback_used": fallback_used,
            }
        )
        if cost is not None:
            span.set_attribute("lectern.llm.cost_usd", cost)
        if invalid:
            span.set_attribute("error.type", "invalid_output")
            span.set_status(Status(StatusCode.ERROR, "invalid structured output"))

        result = LLMResult(
            text=answer.text,
            model=model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost,
            latency_ms=elapsed * 1000,
            ttft_ms=answer.ttft_s * 1000 if answer.ttft_s is not None else None,
            attempts=attempts,
            fallback_used=fallback_used,
            repaired=bool(outcome and outcome.quality.get("repaired") and not invalid),
        )
        payload = self._payload(
            call,
            model=model,
            requested=requested,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost=cost,
            elapsed=elapsed,
            ttft_s=answer.ttft_s,
            status=status,
            error_kind="invalid_output" if invalid else None,
            attempts=attempts,
            fallback_used=fallback_used,
            output=answer.text,
            quality=dict(outcome.quality) if outcome is not None else {},
        )
        return result, outcome, payload

    def _failure(
        self,
        span: Span,
        call: _Call,
        model: str,
        requested: str,
        kind: ErrorKind,
        attempts: int,
        fallback_used: bool,
        elapsed: float,
    ) -> LLMCallCompletedPayload:
        metrics.REQUEST_DURATION.labels(self._service, call.task, model, "error").observe(elapsed)
        span.set_attributes(
            {
                "error.type": kind,
                "lectern.llm.model": model,
                "lectern.llm.attempts": attempts,
                "lectern.llm.fallback_used": fallback_used,
            }
        )
        span.set_status(Status(StatusCode.ERROR, f"LLM call failed: {kind}"))
        return self._payload(
            call,
            model=model,
            requested=requested,
            input_tokens=0,
            output_tokens=0,
            cost=None,
            elapsed=elapsed,
            ttft_s=None,
            status="error",
            error_kind=kind,
            attempts=attempts,
            fallback_used=fallback_used,
            output="",
            quality={},
        )

    def _payload(
        self,
        call: _Call,
        *,
        model: str,
        requested: str,
        input_tokens: int,
        output_tokens: int,
        cost: float | None,
        elapsed: float,
        ttft_s: float | None,
        status: Literal["ok", "error"],
        error_kind: str | None,
        attempts: int,
        fallback_used: bool,
        output: str,
        quality: dict[str, Any],
    ) -> LLMCallCompletedPayload:
        return LLMCallCompletedPayload(
            service=self._service,
            task=call.task,
            prompt_name=call.prompt_name,
            prompt_version=call.prompt_version,
            model=model,
            requested_model=requested,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            latency_ms=elapsed * 1000,
            ttft_ms=ttft_s * 1000 if ttft_s is not None else None,
            status=status,
            error_kind=error_kind,
            attempts=attempts,
            fallback_used=fallback_used,
            trace_id=None,
            course_id=call.course_id,
            variables_preview=_preview(call.variables, VARIABLES_PREVIEW_MAX),
            output_preview=_preview(output, OUTPUT_PREVIEW_MAX),
            quality=quality,
            experiment_id=call.experiment_id,
            prompt_fallback=call.prompt_fallback,
            step=call.step,
        )

    async def _emit(self, payload: LLMCallCompletedPayload) -> None:
        if self._on_call_completed is None:
            return
        try:
            await self._on_call_completed(payload)
        except Exception:
            # Reporting must never break the call it reports on.
            logger.exception("on_call_completed failed for LLM task %s", payload.task)
