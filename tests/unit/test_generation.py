"""Every LLM call renders its prompt by name and reports what the prompt source chose."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from pydantic import BaseModel

from shared.contracts.jobs import JobChunk
from shared.contracts.planner import FinalizeCourse, FinalizeCoursePayload
from shared.generation import GenerationDeps, complete, generate
from shared.llm.prompts import DefaultPrompts, RenderedPrompt
from shared.llm.templates import ModelConfig, TemplateError


class Registry:
    """A prompt source that picked version 7 of every prompt in an experiment."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any], str | None]] = []

    async def render(
        self, name: str, variables: dict[str, Any], *, subject: str | None = None
    ) -> RenderedPrompt:
        self.asked.append((name, variables, subject))
        return RenderedPrompt(
            name=name,
            version="7",
            messages=[{"role": "user", "content": f"{name}: {variables}"}],
            model=ModelConfig(model="openai/gpt-4o-mini", temperature=0.2, max_tokens=99),
            experiment_id="exp-1",
            fallback=True,
        )


class Draft(BaseModel):
    title: str


class FakeLLM:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def stream(self, **kw: Any) -> str:
        self.calls.append(kw)
        if kw["on_attempt"]:
            await kw["on_attempt"](1)
            await kw["on_delta"]("streamed text")
        return "result"

    async def structured(self, *, schema: type[BaseModel], **kw: Any) -> tuple[Any, str]:
        self.calls.append({"schema": schema, **kw})
        return schema(title="t"), "result"


def deps(prompts: Any, chunks: list[JobChunk] | None = None) -> GenerationDeps:
    async def publish(chunk: JobChunk) -> None:
        if chunks is not None:
            chunks.append(chunk)

    return GenerationDeps(
        sessionmaker=None, llm=FakeLLM(), publish_chunk=publish, wake_relay=None, prompts=prompts
    )


async def test_complete_calls_the_llm_with_the_rendered_prompt_and_its_settings() -> None:
    registry = Registry()
    d = deps(registry)
    value, _ = await complete(
        d,
        task="quiz",
        prompt="assessment.quiz",
        variables={"lesson": "x"},
        subject="c-1",
        step="quiz:1",
        schema=Draft,
        job_id="j-1",
        course_id="c-1",
    )
    assert value == Draft(title="t")
    assert registry.asked == [("assessment.quiz", {"lesson": "x"}, "c-1")]
    [call] = d.llm.calls
    assert call == {
        "schema": Draft,
        "task": "quiz",
        "messages": [{"role": "user", "content": "assessment.quiz: {'lesson': 'x'}"}],
        "prompt_name": "assessment.quiz",
        "prompt_version": "7",
        "temperature": 0.2,
        "max_tokens": 99,
        "model": "openai/gpt-4o-mini",
        "experiment_id": "exp-1",
        "prompt_fallback": True,
        "step": "quiz:1",
        "variables": {"lesson": "x"},
        "job_id": "j-1",
        "course_id": "c-1",
        "on_delta": None,
        "on_attempt": None,
        "on_done": None,
    }


async def test_generate_streams_the_step_and_reports_the_shipped_default() -> None:
    chunks: list[JobChunk] = []
    d = deps(DefaultPrompts(), chunks)
    origin = FinalizeCourse(
        job_id="j-1", correlation_id="j-1", payload=FinalizeCoursePayload(course_id="c-1")
    )
    out = await generate(
        d,
        origin,
        step="summary",
        course_id="c-1",
        task="summarise_chat",
        prompt="planner.summarise_chat",
        variables={"summary": "", "conversation": "user: hi"},
        subject="c-1",
    )
    assert out == "result"
    [call] = d.llm.calls
    assert (call["prompt_name"], call["prompt_version"], call["step"]) == (
        "planner.summarise_chat",
        "default",
        "summary",
    )
    assert call["messages"][-1] == {
        "role": "user",
        "content": "Conversation to add:\nuser: hi",
    }
    assert (call["model"], call["temperature"], call["experiment_id"]) == (None, None, None)
    assert call["prompt_fallback"] is False and call["job_id"] == "j-1"
    assert "".join(c.payload.text for c in chunks) == "streamed text"
    assert {c.payload.step for c in chunks} == {"summary"}


async def test_variables_that_do_not_fit_fail_before_any_model_is_called() -> None:
    d = deps(DefaultPrompts())
    with pytest.raises(TemplateError, match="missing variables: conversation"):
        await complete(
            d,
            task="summarise_chat",
            prompt="planner.summarise_chat",
            variables={"summary": ""},
            subject=None,
        )
    assert d.llm.calls == []


async def test_chunk_events_are_spaced_out_as_more_streams_run_at_once() -> None:
    """Up to CHUNK_EVENTS_PER_S / 10 streams: every 0.1 s each; beyond, the pieces grow
    and the process's chunk event rate stays about the same."""
    from shared.generation import CHUNK_EVENTS_PER_S, PacedStreamer

    origin = FinalizeCourse(
        job_id="j-1", correlation_id="c", payload=FinalizeCoursePayload(course_id="c-1")
    )

    async def publish(chunk: JobChunk) -> None:
        pass

    gc.collect()
    others = len(PacedStreamer._live)  # earlier tests' streamers still referenced somewhere
    first = PacedStreamer(publish, origin, step="s")
    assert first.min_interval == 0.1
    crowd = [PacedStreamer(publish, origin, step="s") for _ in range(CHUNK_EVENTS_PER_S * 5)]
    assert first.min_interval == pytest.approx(5.0 + (others + 1) / CHUNK_EVENTS_PER_S)
    del crowd  # finished streams no longer count
    assert first.min_interval == 0.1
