"""The real LLM client (offline model) behind a recorder, for service-level tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.settings import get_settings

Override = Callable[[dict[str, Any]], Awaitable[Any] | None]


class Recording:
    """The real LLM client, remembering every call's arguments.

    ``overrides[task]`` may answer a call instead of the model (return a coroutine
    giving the result) or let it through (return None): tests script a model that
    misbehaves in one way while everything else stays real.
    """

    def __init__(self, service: str) -> None:
        from shared.llm import LLMClient

        self.client = LLMClient(get_settings(service), service=service)
        self.calls: list[dict[str, Any]] = []
        self.overrides: dict[str, Override] = {}

    @property
    def models(self) -> list[str]:
        return self.client.models

    def estimate_cost(self, i: int, o: int) -> float | None:
        return self.client.estimate_cost(i, o)

    def tasks(self) -> list[str]:
        """The task of every call so far, in order."""
        return [c["task"] for c in self.calls]

    async def stream(self, **kw: Any) -> Any:
        self.calls.append(kw)
        return await self.client.stream(**kw)

    async def structured(self, **kw: Any) -> Any:
        self.calls.append(kw)
        override = self.overrides.get(kw["task"])
        answer = override(kw) if override else None
        if answer is not None:
            return await answer
        return await self.client.structured(**kw)


def forbid_litellm_stream_wrapper(monkeypatch: Any) -> None:
    """Make litellm's stream wrapper fail if anything iterates it: the LLM client must
    read the provider's stream itself."""
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    async def forbidden(self: Any) -> Any:
        raise AssertionError("read through litellm's stream wrapper")

    monkeypatch.setattr(CustomStreamWrapper, "__anext__", forbidden)
