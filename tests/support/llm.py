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


# How a client may read an answer: its own route, without litellm (``direct``); through
# litellm, the provider's stream read past litellm's wrapper (``unwrapped``); through
# litellm's wrapper (``wrapper``: how litellm's other providers are read).
WAYS = ("direct", "unwrapped", "wrapper")


def read_answers(monkeypatch: Any, way: str) -> dict[str, Any]:
    """Make answers be read ``way`` (see :data:`WAYS`); the client's settings for it."""
    import shared.llm.client as llm_client

    if way == "direct":

        def no_litellm() -> Any:
            raise AssertionError("litellm used on a direct route")

        monkeypatch.setattr(llm_client, "load_litellm", no_litellm)
    elif way == "unwrapped":
        forbid_litellm_stream_wrapper(monkeypatch)
    else:
        monkeypatch.setattr(llm_client, "_pieces", llm_client._WrappedStream)
    return {"llm_direct": way == "direct"}
