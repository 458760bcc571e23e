"""LLMClient: streaming, structured output, retries, fallbacks, metrics, spans, events."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from shared.contracts.llm import LLMCallCompleted, LLMCallCompletedPayload
from shared.llm import LLMClient, LLMError, StructuredOutputError, load_litellm
from shared.llm.client import classify_error, retry_after_seconds
from shared.llm.offline import HOOK_FAIL, HOOK_INVALID_JSON, HOOK_INVALID_JSON_ONCE
from shared.settings import LecternSettings
from tests.support.fake_openai import DEFAULT_REPLY, FakeOpenAIServer, run_fake_openai
from tests.support.llm import WAYS, read_answers
from tests.support.processes import ROOT

PROFILE = "topic: Python\nlevel: beginner\nduration_hours: 8\nexpectations: automate reports"


class Module(BaseModel):
    order: int
    title: str = Field(min_length=1)
    description: str
    learning_objectives: list[str]
    estimated_hours: float


class Modules(BaseModel):
    modules: list[Module] = Field(min_length=1)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans; installs an SDK tracer provider unless one is already set."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    with run_fake_openai() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.behaviour.reset()
    return fake_server


@pytest.fixture(autouse=True)
def _no_latency_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LECTERN_OFFLINE_LATENCY_MS", raising=False)


class Recorder:
    """Collects what the client hands to its callbacks."""

    def __init__(self) -> None:
        self.payloads: list[LLMCallCompletedPayload] = []
        self.deltas: list[str] = []
        self.attempts: list[int] = []

    async def on_call_completed(self, payload: LLMCallCompletedPayload) -> None:
        self.payloads.append(payload)

    async def on_delta(self, text: str) -> None:
        self.deltas.append(text)

    async def on_attempt(self, number: int) -> None:
        self.attempts.append(number)


PROMPT = {"prompt_name": "p", "prompt_version": "1"}  # the prompt every call names
_clients: list[LLMClient] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> Any:
    """Close the clients a test made (the ``openai/*`` route's connections)."""
    yield
    while _clients:
        await _clients.pop().aclose()


def make_client(service: str, recorder: Recorder | None = None, **settings: Any) -> LLMClient:
    client = LLMClient(
        LecternSettings(**settings),
        service=service,
        on_call_completed=recorder.on_call_completed if recorder else None,
    )
    # Keep retry tests fast; Retry-After still applies as sent.
    client.backoff_base_s = 0.01
    _clients.append(client)
    return client


def provider_settings(fake: FakeOpenAIServer, **overrides: Any) -> dict[str, Any]:
    return {
        "llm_model": "openai/test-model",
        "llm_api_base": fake.base_url,
        "llm_api_key": "sk-test-dummy",
        "llm_timeout_s": 10.0,
        "llm_max_retries": 1,
        **overrides,
    }


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def messages(user: str, system: str = "You are a course planner.") -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- offline


async def test_stream_offline_deltas_usage_and_event(spans: InMemorySpanExporter) -> None:
    recorder = Recorder()
    client = make_client("t-stream", recorder)
    variables = {"profile": PROFILE, "padding": "x" * 5000}
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("job") as parent:
        result = await client.stream(
            task="welcome_plan",
            messages=messages(PROFILE),
            prompt_name="planner.welcome",
            prompt_version="3",
            on_delta=recorder.on_delta,
            on_attempt=recorder.on_attempt,
            job_id="job-1",
            course_id="course-1",
            variables=variables,
        )
    assert result.text.startswith("# Python — course plan") and "## Modules" in result.text
    assert len(recorder.deltas) > 3 and "".join(recorder.deltas) == result.text
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.model == "offline/lectern" and result.cost_usd == 0.0
    assert result.attempts == 1 and not result.fallback_used and not result.repaired
    assert result.ttft_ms is not None and 0 <= result.ttft_ms <= result.latency_ms
    assert recorder.attempts == [1]

    (payload,) = recorder.payloads
    assert (payload.service, payload.task, payload.prompt_name, payload.prompt_version) == (
        "t-stream",
        "welcome_plan",
        "planner.welcome",
        "3",
    )
    assert payload.status == "ok" and payload.error_kind is None
    assert payload.model == payload.requested_model == "offline/lectern"
    assert payload.input_tokens == result.input_tokens
    assert payload.course_id == "course-1"
    assert len(payload.variables_preview) == 2000 and payload.variables_preview.startswith("{")
    assert payload.output_preview == result.text[:4000]
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert payload.trace_id == trace_id
    # The payload fits the event contract.
    event = LLMCallCompleted(job_id="job-1", correlation_id="c-1", payload=payload)
    assert event.to_wire()["schema"] == "llm.call_completed.v1"

    (span,) = [
        s for s in spans.get_finished_spans() if s.attributes.get("lectern.job_id") == "job-1"
    ]
    assert span.name == "chat offline/lectern"
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["gen_ai.request.model"] == "offline/lectern"
    assert span.attributes["gen_ai.response.model"]
    assert span.attributes["gen_ai.usage.input_tokens"] == result.input_tokens
    assert span.attributes["gen_ai.usage.output_tokens"] == result.output_tokens
    assert span.attributes["lectern.prompt.name"] == "planner.welcome"
    assert span.attributes["lectern.prompt.version"] == "3"
    assert span.attributes["lectern.task"] == "welcome_plan"


async def test_the_prompts_model_goes_first_and_its_choice_is_reported() -> None:
    recorder = Recorder()
    client = make_client("t-prompt-model", recorder)
    await client.stream(
        task="welcome_plan",
        messages=messages(PROFILE),
        prompt_name="planner.welcome_plan",
        prompt_version="4",
        model="offline/prompt-choice",
        experiment_id="exp-1",
        prompt_fallback=True,
        step="welcome_plan",
    )
    await client.stream(
        task="welcome_plan",
        messages=messages(PROFILE),
        prompt_name="planner.welcome_plan",
        prompt_version="default",
    )
    chosen, default = recorder.payloads
    assert (chosen.requested_model, chosen.model) == ("offline/prompt-choice",) * 2
    assert (chosen.experiment_id, chosen.prompt_fallback, chosen.step) == (
        "exp-1",
        True,
        "welcome_plan",
    )
    assert default.requested_model == "offline/lectern"
    assert (default.experiment_id, default.prompt_fallback, default.step) == (None, False, None)


async def test_a_broken_prompt_model_falls_back_to_the_configured_one() -> None:
    recorder = Recorder()
    client = make_client("t-prompt-typo", recorder)
    result = await client.stream(
        task="welcome_plan",
        messages=messages(PROFILE),
        prompt_name="planner.welcome_plan",
        prompt_version="5",
        model="nosuchprovider/typo-model",  # a prompt engineer's typo: not retryable
    )
    assert result.text and result.model == "offline/lectern" and result.fallback_used
    (payload,) = recorder.payloads
    assert payload.requested_model == "nosuchprovider/typo-model" and payload.status == "ok"


async def test_stream_is_deterministic_and_records_metrics() -> None:
    client = make_client("t-metrics")
    labels = {"service": "t-metrics", "task": "write_lesson", "model": "offline/lectern"}
    before_in = sample("lectern_llm_tokens_total", **labels, prompt_version="1", direction="input")
    before_out = sample(
        "lectern_llm_tokens_total", **labels, prompt_version="1", direction="output"
    )
    before_count = sample("lectern_llm_request_duration_seconds_count", **labels, status="ok")
    before_ttft = sample("lectern_llm_time_to_first_token_seconds_count", **labels)

    kwargs: dict[str, Any] = {
        "task": "write_lesson",
        "messages": messages("title: Python loops", "You write lessons."),
        "prompt_name": "content.lesson",
        "prompt_version": "1",
    }
    first = await client.stream(**kwargs)
    second = await client.stream(**kwargs)
    assert first.text == second.text and "## Knowledge check" in first.text

    tokens_in = sample("lectern_llm_tokens_total", **labels, prompt_version="1", direction="input")
    tokens_out = sample(
        "lectern_llm_tokens_total", **labels, prompt_version="1", direction="output"
    )
    assert tokens_in - before_in == first.input_tokens + second.input_tokens
    assert tokens_out - before_out == first.output_tokens + second.output_tokens
    assert (
        sample("lectern_llm_request_duration_seconds_count", **labels, status="ok") - before_count
        == 2
    )
    assert sample("lectern_llm_time_to_first_token_seconds_count", **labels) - before_ttft == 2


async def test_marker_is_added_for_offline_models_only() -> None:
    client = make_client("t-marker")
    no_system = await client.stream(
        task="quiz",
        messages=[{"role": "user", "content": "title: Loops"}],
        **PROMPT,
    )
    assert '"multiple_choice"' in no_system.text  # the task reached the offline model
    request = client._request("openai/x", _call_of(messages("hi", "[lectern-task: quiz]\nSys")))
    assert request["messages"][0]["content"] == "Sys"
    assert "api_base" not in client._request("offline/lectern", _call_of(messages("hi")))


def _call_of(msgs: list[dict[str, str]]) -> Any:
    from shared.llm.client import _Call

    return _Call("quiz", msgs, "p", "1", None, None, None, None, None, None, None)


async def test_structured_repairs_invalid_json_once() -> None:
    recorder = Recorder()
    client = make_client("t-repair", recorder)
    before = sample(
        "lectern_llm_errors_total",
        service="t-repair",
        task="finalise_modules",
        kind="invalid_output",
    )
    value, result = await client.structured(
        task="finalise_modules",
        messages=messages(f"{PROFILE}\n{HOOK_INVALID_JSON_ONCE}"),
        schema=Modules,
        prompt_name="planner.finalise",
        prompt_version="2",
        on_delta=recorder.on_delta,
        on_attempt=recorder.on_attempt,
    )
    assert isinstance(value, Modules) and len(value.modules) >= 3
    assert result.repaired and result.attempts == 2
    assert recorder.attempts == [1, 2]
    first, second = recorder.payloads
    assert (first.status, first.error_kind) == ("error", "invalid_output")
    assert first.quality == {"valid_json": False, "schema_valid": False, "repaired": False}
    assert second.status == "ok" and second.quality["repaired"] is True
    assert second.quality["valid_json"] is True
    assert result.input_tokens == first.input_tokens + second.input_tokens
    after = sample(
        "lectern_llm_errors_total",
        service="t-repair",
        task="finalise_modules",
        kind="invalid_output",
    )
    assert after - before == 1


async def test_structured_valid_first_time() -> None:
    client = make_client("t-structured")
    value, result = await client.structured(
        task="finalise_modules",
        messages=messages(PROFILE),
        schema=Modules,
        prompt_name="planner.finalise",
        prompt_version="2",
    )
    assert value.modules[0].order == 1 and not result.repaired and result.attempts == 1


async def test_structured_gives_up_after_one_repair() -> None:
    recorder = Recorder()
    client = make_client("t-invalid", recorder)
    with pytest.raises(StructuredOutputError) as caught:
        await client.structured(
            task="quiz",
            messages=messages(f"title: Loops {HOOK_INVALID_JSON}"),
            schema=Modules,
            prompt_name="assessment.quiz",
            prompt_version="1",
        )
    assert caught.value.kind == "invalid_output" and caught.value.retryable is False
    assert caught.value.validation_error and "invalid JSON" in str(caught.value)
    assert [p.error_kind for p in recorder.payloads] == ["invalid_output", "invalid_output"]


async def test_offline_failure_is_not_retried() -> None:
    recorder = Recorder()
    client = make_client("t-fail", recorder, llm_max_retries=3)
    with pytest.raises(LLMError) as caught:
        await client.stream(
            task="quiz",
            messages=messages(f"please {HOOK_FAIL}"),
            **PROMPT,
            on_attempt=recorder.on_attempt,
        )
    assert caught.value.kind == "provider_error" and caught.value.retryable is False
    assert recorder.attempts == [1]
    (payload,) = recorder.payloads
    assert payload.status == "error" and payload.error_kind == "provider_error"
    assert payload.attempts == 1
    assert (
        sample("lectern_llm_errors_total", service="t-fail", task="quiz", kind="provider_error")
        >= 1
    )


async def test_idle_timeout_is_a_timeout_error() -> None:
    client = make_client("t-timeout", llm_timeout_s=0.2, llm_max_retries=0, offline_latency_ms=3000)
    with pytest.raises(LLMError) as caught:
        await client.stream(task="quiz", messages=messages("x"), **PROMPT)
    assert caught.value.kind == "timeout" and caught.value.retryable is True


async def test_callback_failures(caplog: pytest.LogCaptureFixture) -> None:
    async def broken_report(payload: LLMCallCompletedPayload) -> None:
        raise RuntimeError("broker down")

    client = LLMClient(LecternSettings(), service="t-cb", on_call_completed=broken_report)
    with caplog.at_level(logging.ERROR, logger="shared.llm.client"):
        result = await client.stream(task="quiz", messages=messages("x"), **PROMPT)
    assert result.text and "on_call_completed failed" in caplog.text

    async def broken_delta(text: str) -> None:
        raise KeyError("client went away")

    with pytest.raises(KeyError):
        await client.stream(
            task="quiz",
            messages=messages("x"),
            **PROMPT,
            on_delta=broken_delta,
        )


async def test_on_done_runs_beside_the_usage_report() -> None:
    """The caller's last text goes out while the usage event is published, not after."""
    order: list[str] = []
    reported = asyncio.Event()

    async def report(payload: LLMCallCompletedPayload) -> None:
        order.append("report started")
        await asyncio.sleep(0.05)  # a publisher confirm on its way
        order.append("report confirmed")
        reported.set()

    async def on_done() -> None:
        order.append("done")
        assert not reported.is_set(), "on_done waited for the usage report"

    client = LLMClient(LecternSettings(), service="t-done", on_call_completed=report)
    result = await client.stream(task="quiz", messages=messages("x"), **PROMPT, on_done=on_done)
    assert result.text
    assert order.count("done") == 1 and order[-1] == "report confirmed"

    failed: list[str] = []

    async def never(*_: object) -> None:
        failed.append("called")

    with pytest.raises(LLMError):
        await client.stream(
            task="quiz",
            messages=messages(f"x {HOOK_FAIL}"),
            **PROMPT,
            on_done=never,
        )
    assert failed == []  # no complete answer: nothing to flush


# --------------------------------------------------------------------------- provider path


async def test_provider_streams_text(fake: FakeOpenAIServer) -> None:
    recorder = Recorder()
    client = make_client("t-provider", recorder, **provider_settings(fake))
    result = await client.stream(
        task="welcome_plan",
        messages=messages("hello provider", "[lectern-task: welcome_plan]\nBe brief."),
        **PROMPT,
        on_delta=recorder.on_delta,
        temperature=0.3,
        max_tokens=200,
    )
    assert result.text == DEFAULT_REPLY
    assert len(recorder.deltas) > 2 and "".join(recorder.deltas) == DEFAULT_REPLY
    assert result.model == "openai/test-model" and result.attempts == 1
    assert result.input_tokens == len("Be brief. hello provider".split())
    assert result.output_tokens == len(DEFAULT_REPLY.split())
    assert result.cost_usd is None  # not in litellm's price map
    (request,) = fake.behaviour.requests
    assert request["stream"] is True and request["temperature"] == 0.3
    assert all("lectern-task" not in m["content"] for m in request["messages"])
    assert recorder.payloads[0].cost_usd is None


async def test_a_long_stream_keeps_its_text_and_usage_while_chunks_are_dropped(
    fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read through litellm's wrapper (providers of other kinds), its copies of a long
    stream's chunks are dropped as it goes (memory per call in flight); the text and
    the provider's usage are whole."""
    read_answers(monkeypatch, "wrapper")
    reply = " ".join(f"word{i}" for i in range(300))  # 100 chunks of three words
    fake.behaviour.reply = reply
    recorder = Recorder()
    client = make_client("t-long", recorder, **provider_settings(fake, llm_direct=False))
    result = await client.stream(
        task="write_lesson",
        messages=messages("a long one"),
        **PROMPT,
        on_delta=recorder.on_delta,
    )
    assert result.text == reply and "".join(recorder.deltas) == reply
    assert result.output_tokens == 300  # the provider's count, not the last chunks'
    assert result.input_tokens == len("You are a course planner. a long one".split())


@pytest.mark.parametrize("provider", ["openai-compatible", "offline"])
async def test_every_way_of_reading_an_answer_says_the_same(
    provider: str, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenAI-compatible provider's answer and the offline model's, read on their
    direct routes (no litellm), past litellm's wrapper and through it (which costs most
    of a streamed call's CPU): the text, the pieces streamed, the usage and the attempts
    are the same."""
    fake.behaviour.reply = " ".join(f"word{i}" for i in range(120))
    settings = provider_settings(fake) if provider == "openai-compatible" else {}
    results = []
    for way in WAYS:
        recorder = Recorder()
        with monkeypatch.context() as m:
            client = make_client(f"t-ways-{way}", None, **settings, **read_answers(m, way))
            result = await client.stream(
                task="quiz",
                messages=messages("a quiz on loops", "[lectern-task: quiz]\nWrite a quiz."),
                **PROMPT,
                on_delta=recorder.on_delta,
            )
        results.append((result, recorder.deltas))
    (first, first_deltas), *others = results
    assert first.text and len(first_deltas) > 10
    for other, deltas in others:
        assert deltas == first_deltas and other.text == first.text
        assert (other.input_tokens, other.output_tokens) == (
            first.input_tokens,
            first.output_tokens,
        )
        assert other.attempts == first.attempts == 1
        assert other.cost_usd == first.cost_usd
    if provider == "openai-compatible":
        assert first.output_tokens == 120  # the provider's usage chunk
        assert {r["model"] for r in fake.behaviour.requests} == {"test-model"}


async def test_an_event_stream_is_read_in_any_framing_and_its_error_event_raised() -> None:
    """The direct route reads the provider's event stream itself: events split anywhere
    across network reads, CRLF lines, comments and ``event:`` lines, an event of several
    ``data:`` lines, and a last event without its blank line; an error event is a
    ``ProviderError`` (retried); nothing after ``[DONE]`` is read."""
    from shared.llm.openai_http import ProviderError, sse_chunks

    async def blocks(raw: bytes, size: int) -> Any:
        for i in range(0, len(raw), size):
            yield raw[i : i + size]

    async def read(raw: bytes, size: int) -> list[Any]:
        return [chunk async for chunk in sse_chunks(blocks(raw, size))]

    stream = (
        b": keep-alive\r\n\r\n"
        b'data: {"choices": [{"delta": {"content": "Hel"}}]}\r\n\r\n'
        b'event: message\ndata: {"choices": [{"delta":\ndata: {"content": "lo"}}]}\n\n'
        b'data:{"choices": [], "usage": {"prompt_tokens": 3}}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"choices": [{"delta": {"content": "after the end"}}]}\n\n'
    )
    for size in (1, 7, len(stream)):
        chunks = await read(stream, size)
        assert [c["choices"][0]["delta"]["content"] for c in chunks[:2]] == ["Hel", "lo"]
        assert chunks[2]["usage"] == {"prompt_tokens": 3} and len(chunks) == 3
    unended = b'data: {"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}'
    assert (await read(unended, 5))[0]["choices"][0]["finish_reason"] == "stop"
    failing = b'data: {"choices": []}\n\ndata: {"error": {"message": "overloaded"}}\n\n'
    with pytest.raises(ProviderError, match="overloaded") as caught:
        await read(failing, 4)
    assert classify_error(caught.value) == ("provider_error", True)


def test_dropping_streamed_chunks_keeps_the_last_ones_and_usage() -> None:
    from types import SimpleNamespace

    from shared.llm.client import _forget_streamed_chunks, _provider_reported_usage

    plain = [SimpleNamespace(usage=None, n=i) for i in range(20)]
    counted = SimpleNamespace(usage={"completion_tokens": 3}, n=20)
    stream = SimpleNamespace(chunks=[*plain[:10], counted, *plain[10:]])
    assert not _provider_reported_usage(SimpleNamespace(chunks=plain))
    assert _forget_streamed_chunks(stream)
    assert [c.n for c in stream.chunks] == [20, 18, 19]
    assert _provider_reported_usage(stream)
    assert not _forget_streamed_chunks(stream)  # nothing more to drop
    assert not _forget_streamed_chunks(SimpleNamespace())  # not a litellm stream: untouched


async def test_provider_cost_for_a_priced_model(fake: FakeOpenAIServer) -> None:
    client = make_client("t-cost", **provider_settings(fake, llm_model="openai/gpt-4o-mini"))
    labels = {"service": "t-cost", "task": "quiz", "model": "openai/gpt-4o-mini"}
    before = sample("lectern_llm_cost_usd_total", **labels)
    result = await client.stream(task="quiz", messages=messages("x"), **PROMPT)
    assert result.cost_usd is not None and result.cost_usd > 0
    assert sample("lectern_llm_cost_usd_total", **labels) - before == pytest.approx(result.cost_usd)


async def test_provider_rate_limit_honours_retry_after(fake: FakeOpenAIServer) -> None:
    fake.behaviour.rate_limit_times = 1
    recorder = Recorder()
    client = make_client("t-429", recorder, **provider_settings(fake, llm_max_retries=2))
    retries_before = sample("lectern_llm_retries_total", service="t-429", task="quiz")
    started = time.monotonic()
    result = await client.stream(
        task="quiz",
        messages=messages("x"),
        **PROMPT,
        on_delta=recorder.on_delta,
        on_attempt=recorder.on_attempt,
    )
    elapsed = time.monotonic() - started
    assert result.text == DEFAULT_REPLY and result.attempts == 2
    assert recorder.attempts == [1, 2]
    assert elapsed >= 0.95
    times = fake.behaviour.request_times
    assert len(times) == 2 and times[1] - times[0] >= 0.95  # no hidden SDK retries
    assert sample("lectern_llm_retries_total", service="t-429", task="quiz") - retries_before == 1
    assert sample("lectern_llm_errors_total", service="t-429", task="quiz", kind="rate_limit") >= 1
    assert recorder.payloads[0].attempts == 2 and recorder.payloads[0].status == "ok"


@pytest.mark.parametrize("way", WAYS)
async def test_a_refused_request_means_the_same_on_every_route(
    way: str, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's refusal is retried, or not, alike on the direct route (its own HTTP)
    and through litellm: a rate limit and a server error are tried again, a bad key, a
    bad request and an unknown model are not; the error names the server's message."""
    direct = read_answers(monkeypatch, way)
    fake.behaviour.retry_after = "0"
    client = make_client(f"t-refused-{way}", **provider_settings(fake, **direct))
    for status, kind, retryable in [
        (429, "rate_limit", True),
        (503, "provider_error", True),
        (500, "provider_error", True),
        (401, "provider_error", False),
        (400, "provider_error", False),
        (404, "provider_error", False),
    ]:
        fake.behaviour.fail_status = [status, status]
        fake.behaviour.requests.clear()
        with pytest.raises(LLMError) as caught:
            await client.stream(task="quiz", messages=messages("x"), **PROMPT)
        assert (caught.value.kind, caught.value.retryable) == (kind, retryable), status
        assert len(fake.behaviour.requests) == (2 if retryable else 1), status
        assert f"refused with {status}" in str(caught.value)
    fake.behaviour.fail_status = [503]  # then a healthy answer: the retry gets it
    result = await client.stream(task="quiz", messages=messages("x"), **PROMPT)
    assert result.text == DEFAULT_REPLY and result.attempts == 2


@pytest.mark.parametrize("way", WAYS)
async def test_a_stream_ended_without_finish_reason_is_retried(
    way: str, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a connection closed cleanly mid-answer must not be taken for the whole answer
    direct = read_answers(monkeypatch, way)
    fake.behaviour.cut_clean_times = 1
    recorder = Recorder()
    service = f"t-cut-{way}"
    client = make_client(service, recorder, **provider_settings(fake, llm_max_retries=2, **direct))
    result = await client.stream(
        task="write_lesson",
        messages=messages("x"),
        **PROMPT,
        on_delta=recorder.on_delta,
        on_attempt=recorder.on_attempt,
    )
    assert result.text == DEFAULT_REPLY and result.attempts == 2
    assert recorder.attempts == [1, 2]  # the streamed half is void: attempt 2 starts over
    assert len(fake.behaviour.requests) == 2
    errors = sample("lectern_llm_errors_total", service=service, task="write_lesson",
                    kind="provider_error")  # fmt: skip
    assert errors == 1


async def test_provider_falls_back_after_persistent_errors(fake: FakeOpenAIServer) -> None:
    fake.behaviour.fail_models = {"test-model"}
    recorder = Recorder()
    client = make_client(
        "t-fallback",
        recorder,
        **provider_settings(fake, llm_fallback_models=["openai/backup-model"]),
    )
    result = await client.stream(
        task="quiz",
        messages=messages("x"),
        **PROMPT,
        on_attempt=recorder.on_attempt,
    )
    assert result.fallback_used and result.model == "openai/backup-model"
    assert result.attempts == 3 and recorder.attempts == [1, 2, 3]
    assert [r["model"] for r in fake.behaviour.requests] == [
        "test-model",
        "test-model",
        "backup-model",
    ]
    (payload,) = recorder.payloads
    assert payload.fallback_used and payload.requested_model == "openai/test-model"
    assert payload.model == "openai/backup-model"
    assert sample("lectern_llm_fallbacks_total", service="t-fallback", task="quiz") == 1


async def test_provider_exhausted_raises_retryable_error(fake: FakeOpenAIServer) -> None:
    fake.behaviour.fail_models = {"test-model"}
    recorder = Recorder()
    client = make_client("t-exhausted", recorder, **provider_settings(fake))
    with pytest.raises(LLMError) as caught:
        await client.stream(task="quiz", messages=messages("x"), **PROMPT)
    assert caught.value.kind == "provider_error" and caught.value.retryable is True
    (payload,) = recorder.payloads
    assert payload.status == "error" and payload.attempts == 2
    assert (
        sample(
            "lectern_llm_request_duration_seconds_count",
            service="t-exhausted",
            task="quiz",
            model="openai/test-model",
            status="error",
        )
        == 1
    )


async def test_provider_invalid_json_raises_structured_error(fake: FakeOpenAIServer) -> None:
    fake.behaviour.invalid_json = True
    client = make_client("t-provider-json", **provider_settings(fake))
    with pytest.raises(StructuredOutputError):
        await client.structured(
            task="finalise_modules",
            messages=messages("x"),
            schema=Modules,
            **PROMPT,
        )
    first, repair = fake.behaviour.requests
    assert "JSON schema:" in first["messages"][0]["content"]
    assert "repair" in repair["messages"][-1]["content"]
    assert repair["messages"][-2]["role"] == "assistant"


# --------------------------------------------------------------------------- helpers


def _rate_limit(headers: dict[str, str]) -> Exception:
    litellm = load_litellm()
    exc = litellm.RateLimitError(message="slow", llm_provider="openai", model="m")
    exc.litellm_response_headers = httpx.Headers(headers)
    return exc


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(_rate_limit({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(_rate_limit({"retry-after-ms": "1500"})) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds(_rate_limit({"Retry-After": later})) or 0) <= 30
    assert retry_after_seconds(_rate_limit({})) is None
    assert retry_after_seconds(ValueError("no headers")) is None
    client = make_client("t-backoff")
    assert client._backoff(0, 600.0) == 60.0
    assert 0.005 <= client._backoff(0, None) <= 0.01


def test_error_classification() -> None:
    litellm = load_litellm()
    response = httpx.Response(401, request=httpx.Request("POST", "http://x"))
    auth = litellm.AuthenticationError(
        message="bad key", llm_provider="openai", model="m", response=response
    )
    assert classify_error(auth) == ("provider_error", False)
    assert classify_error(_rate_limit({})) == ("rate_limit", True)
    timeout = litellm.Timeout(message="slow", model="m", llm_provider="openai")
    assert classify_error(timeout) == ("timeout", True)
    assert classify_error(TimeoutError()) == ("timeout", True)
    assert classify_error(
        litellm.InternalServerError(message="boom", llm_provider="openai", model="m")
    ) == ("provider_error", True)
    assert classify_error(RuntimeError("?")) == ("provider_error", False)


def test_the_direct_routes_errors_are_classified_as_litellms_are() -> None:
    import openai

    from shared.llm.offline import OfflineFailure

    request = httpx.Request("POST", "http://x/v1/chat/completions")

    def status(code: int) -> httpx.Response:
        return httpx.Response(code, request=request, headers={"retry-after": "2"})

    too_many = openai.RateLimitError("slow", response=status(429), body=None)
    assert classify_error(too_many) == ("rate_limit", True)
    assert retry_after_seconds(too_many) == 2.0
    for code, cls in [(401, openai.AuthenticationError), (400, openai.BadRequestError),
                      (404, openai.NotFoundError)]:  # fmt: skip
        assert classify_error(cls("no", response=status(code), body=None)) == (
            "provider_error",
            False,
        )
    assert classify_error(openai.InternalServerError("x", response=status(503), body=None)) == (
        "provider_error",
        True,
    )
    assert classify_error(openai.APIStatusError("x", response=status(502), body=None)) == (
        "provider_error",
        True,
    )
    assert classify_error(openai.APITimeoutError(request)) == ("timeout", True)
    assert classify_error(openai.APIConnectionError(request=request)) == ("provider_error", True)
    # an error sent inside a stream, and a stream broken under the SDK
    assert classify_error(openai.APIError("overloaded", request, body=None)) == (
        "provider_error",
        True,
    )
    assert classify_error(httpx.RemoteProtocolError("cut")) == ("provider_error", True)
    assert classify_error(httpx.ReadTimeout("idle")) == ("timeout", True)
    assert classify_error(OfflineFailure()) == ("provider_error", False)


def test_the_direct_route_prices_a_call_as_litellm_does() -> None:
    from shared.llm import prices

    litellm = load_litellm()
    for model in ("openai/gpt-4o-mini", "openai/gpt-4o", "openai/o3-mini"):
        response = litellm.ModelResponse(
            model=model,
            usage=litellm.Usage(prompt_tokens=1200, completion_tokens=345, total_tokens=1545),
        )
        expected = litellm.completion_cost(completion_response=response, model=model)
        assert prices.cost(model, 1200, 345) == pytest.approx(expected)
    assert prices.cost("openai/a-self-hosted-model", 1200, 345) is None


def test_openai_and_offline_models_are_called_without_importing_litellm(
    fake: FakeOpenAIServer,
) -> None:
    """A worker whose models are ``openai/*`` (with an offline fallback) warms up, streams
    and validates answers without ever importing litellm (about 140 MB and 4 s), or the
    OpenAI SDK; nothing is left open (Python would warn on stderr)."""
    code = f"""
import asyncio, sys
from pydantic import BaseModel
from shared.llm import LLMClient
from shared.settings import LecternSettings

class Answer(BaseModel):
    title: str

async def main():
    client = LLMClient(LecternSettings(
        llm_model="openai/test-model", llm_api_base={fake.base_url!r},
        llm_api_key="sk-test", llm_fallback_models=["offline/lectern"], llm_max_retries=0,
    ), service="t-no-litellm")
    await client.warm_up()
    call = dict(prompt_name="p", prompt_version="1")
    text = await client.stream(task="welcome_plan", messages=[
        {{"role": "user", "content": "hi"}}], **call)
    quiz, result = await client.structured(task="quiz", schema=Answer, messages=[
        {{"role": "user", "content": "title: Loops"}}], model="offline/lectern",
        **call)
    await client.aclose()
    print(text.model, result.model, bool(quiz.title), client.estimate_cost(10, 10))
    print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"litellm", "tiktoken", "openai"}}))

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == "openai/test-model offline/lectern True None"
    assert second == "[]"
    assert "Unclosed" not in done.stderr, done.stderr


def test_offline_provider_registered_once() -> None:
    from shared.llm.client import JSON_INSTRUCTION
    from shared.llm.offline import JSON_SCHEMA_HEADER

    litellm = load_litellm()
    assert load_litellm() is litellm
    providers = [item["provider"] for item in litellm.custom_provider_map]
    assert providers.count("offline") == 1
    # The offline model finds the schema through the client's instruction.
    assert JSON_SCHEMA_HEADER in JSON_INSTRUCTION
