"""The offline model as litellm's provider ``offline`` (registered by
:func:`shared.llm.load_litellm`): for litellm's own callers, and for the client when
``LECTERN_LLM_DIRECT`` is off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage

from shared.llm import offline


def _latency_s(kwargs: dict[str, Any]) -> float:
    metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
    return offline.latency_s(metadata.get(offline.LATENCY_METADATA_KEY, 0))


def _answer(messages: list[dict[str, Any]]) -> tuple[str, dict[str, int]]:
    try:
        return offline.answer(messages)
    except offline.OfflineFailure as exc:
        raise CustomLLMError(status_code=exc.status_code, message=exc.message) from exc


class OfflineLLM(CustomLLM):
    """litellm handler for ``offline/*`` models: deterministic, no network."""

    def _fill(
        self, model_response: ModelResponse, model: str, text: str, usage: dict[str, int]
    ) -> ModelResponse:
        model_response.choices[0].message.content = text  # type: ignore[union-attr]
        model_response.choices[0].finish_reason = "stop"
        model_response.model = model
        model_response.usage = Usage(**usage)  # type: ignore[attr-defined]
        return model_response

    def completion(  # type: ignore[override]
        self, model: str, messages: list, model_response: ModelResponse, **kwargs: Any
    ) -> ModelResponse:
        """Synchronous, non-streaming answer."""
        text, usage = _answer(messages)
        time.sleep(_latency_s(kwargs))
        return self._fill(model_response, model, text, usage)

    async def acompletion(  # type: ignore[override]
        self, model: str, messages: list, model_response: ModelResponse, **kwargs: Any
    ) -> ModelResponse:
        """Asynchronous, non-streaming answer."""
        text, usage = _answer(messages)
        await asyncio.sleep(_latency_s(kwargs))
        return self._fill(model_response, model, text, usage)

    def streaming(  # type: ignore[override]
        self, model: str, messages: list, **kwargs: Any
    ) -> Iterator[GenericStreamingChunk]:
        """Synchronous stream of a few words per chunk, usage on the last chunk."""
        text, usage = _answer(messages)
        yield from offline.paced(offline.chunks(text, usage), _latency_s(kwargs))  # type: ignore[misc]

    async def astreaming(  # type: ignore[override]
        self, model: str, messages: list, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        """Asynchronous stream of a few words per chunk, usage on the last chunk."""
        text, usage = _answer(messages)
        async for chunk in offline.apaced(offline.chunks(text, usage), _latency_s(kwargs)):
            yield chunk  # type: ignore[misc]
