"""RegistryPrompts: cached resolution, push invalidation, sticky arms, safe fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.llm.prompts import DEFAULT_VERSION, DefaultPrompts
from shared.llm.registry import RegistryPrompts
from shared.llm.templates import NamedTemplate

NAME = "demo.prompt"
SHIPPED = NamedTemplate.model_validate(
    {
        "name": NAME,
        "task": "demo",
        "messages": [{"role": "system", "content": "Default for {topic}."}],
        "variables": {"topic": {"type": "string"}},
    }
)


def _version(text: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "system", "content": text}],
        "variables": {"topic": {"type": "string"}},
        "model": {"temperature": 0.2},
    }


class Registry:
    """A fake registry answering ``resolve`` from what the test sets."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = {"version": 1, "versions": {"1": _version("V1 {topic}")}}
        self.asked = 0
        self.down = False

    async def ask(self, query: str, body: dict[str, Any]) -> Any:
        assert query == "resolve" and body == {"name": NAME, "label": "production"}
        self.asked += 1
        if self.down:
            raise TimeoutError("prompts did not answer")
        return {"name": NAME, "label": "production", **self.answer}


def make() -> tuple[Registry, RegistryPrompts]:
    registry = Registry()
    source = RegistryPrompts(registry.ask, defaults=DefaultPrompts({NAME: SHIPPED}))
    return registry, source


async def test_resolves_once_then_serves_from_cache_until_a_label_moves() -> None:
    registry, source = make()
    first = await source.render(NAME, {"topic": "SQL"})
    assert first.version == "1" and first.messages[0]["content"] == "V1 SQL"
    assert first.model.temperature == 0.2 and not first.fallback
    await source.render(NAME, {"topic": "Go"})
    assert registry.asked == 1
    registry.answer = {"version": 2, "versions": {"2": _version("V2 {topic}")}}
    source.invalidate(NAME, "staging")  # another label: nothing to drop
    assert (await source.render(NAME, {"topic": "SQL"})).version == "1"
    source.invalidate(NAME, "production")  # prompt.activated
    assert (await source.render(NAME, {"topic": "SQL"})).messages[0]["content"] == "V2 SQL"
    assert registry.asked == 2


async def test_a_down_registry_falls_back_to_the_shipped_default_and_backs_off() -> None:
    registry, source = make()
    registry.down = True
    rendered = await source.render(NAME, {"topic": "SQL"})
    assert rendered.fallback and rendered.version == DEFAULT_VERSION
    assert rendered.messages[0]["content"] == "Default for SQL."
    await source.render(NAME, {"topic": "SQL"})
    assert registry.asked == 1  # not asked again within retry_s


async def test_callers_that_miss_the_cache_together_share_one_request() -> None:
    """A worker taking a burst of messages asks the registry once per prompt, not once
    per message (FastStream sends one RPC at a time: they would queue)."""
    registry, source = make()
    release = asyncio.Event()
    ask = registry.ask

    async def slow_ask(query: str, body: dict[str, Any]) -> Any:
        await release.wait()
        return await ask(query, body)

    source.ask = slow_ask
    renders = [asyncio.create_task(source.render(NAME, {"topic": str(i)})) for i in range(50)]
    await asyncio.sleep(0)
    release.set()
    rendered = await asyncio.gather(*renders)
    assert registry.asked == 1
    assert [r.messages[0]["content"] for r in rendered] == [f"V1 {i}" for i in range(50)]
    # a label that moves while a request is under way: that answer is not cached
    registry.answer = {"version": 2, "versions": {"2": _version("V2 {topic}")}}
    release.clear()
    source.invalidate(NAME, "production")
    stale = asyncio.create_task(source.render(NAME, {"topic": "SQL"}))
    await asyncio.sleep(0)
    source.invalidate(NAME, "production")  # prompt.activated again, mid-request
    release.set()
    await stale
    assert (await source.render(NAME, {"topic": "SQL"})).version == "2"
    assert registry.asked == 3  # the request under way was not taken for the new label


async def test_experiment_arms_are_sticky_per_subject() -> None:
    registry, source = make()
    registry.answer = {
        "experiment_id": "exp-1",
        "arms": [{"version": 1, "weight": 0.5}, {"version": 2, "weight": 0.5}],
        "versions": {"1": _version("A {topic}"), "2": _version("B {topic}")},
    }
    seen = {}
    for i in range(50):
        rendered = await source.render(NAME, {"topic": "x"}, subject=f"course-{i}")
        assert rendered.experiment_id == "exp-1"
        seen[i] = rendered.version
        again = await source.render(NAME, {"topic": "x"}, subject=f"course-{i}")
        assert again.version == rendered.version
    assert set(seen.values()) == {"1", "2"}


async def test_missing_variables_are_an_error_not_an_empty_string() -> None:
    _, source = make()
    with pytest.raises(ValueError, match="missing variables: topic"):
        await source.render(NAME, {})
    with pytest.raises(ValueError, match="unknown variables: extra"):
        await source.render(NAME, {"topic": "x", "extra": "y"})
