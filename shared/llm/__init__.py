"""LLM access for every Lectern service: one client, plus an offline model.

``import shared.llm`` is cheap. The client calls ``openai/*`` models with the OpenAI
SDK and ``offline/*`` models in-process; litellm (several seconds and about 140 MB to
import) loads only for a model of another provider, or explicitly through
:func:`load_litellm`. The bundled model price map is used instead of the network copy
(``LITELLM_LOCAL_MODEL_COST_MAP``), and the built-in ``offline`` provider is registered
with litellm once.
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

# Must happen before litellm is imported anywhere: otherwise it fetches its
# model price map from the internet at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# litellm's aiohttp pool caps open connections at 1000, and 500 per host: a worker holding
# more streams than that to one provider would queue the rest inside litellm, unseen. Our
# calls in flight are bounded already (one per message held, LECTERN_PREFETCH), so the
# pool's cap is set well above them (0 would mean aiohttp's default, 100); set either
# variable to impose a lower one. litellm reads them when it is imported.
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT", "10000")
os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", "10000")

if TYPE_CHECKING:
    from shared.llm.client import LLMClient, LLMError, LLMResult, StructuredOutputError
    from shared.llm.offline import task_marker

__all__ = [
    "LLMClient",
    "LLMError",
    "LLMResult",
    "StructuredOutputError",
    "load_litellm",
    "task_marker",
]

_EXPORTS = {
    "LLMClient": "shared.llm.client",
    "LLMError": "shared.llm.client",
    "LLMResult": "shared.llm.client",
    "StructuredOutputError": "shared.llm.client",
    "task_marker": "shared.llm.offline",
}
_lock = threading.Lock()
_loaded: ModuleType | None = None


def load_litellm() -> ModuleType:
    """Import litellm once, configure it and register the offline provider."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            import litellm

            from shared.llm.offline import PROVIDER
            from shared.llm.offline_litellm import OfflineLLM

            # litellm prints a "Give Feedback / Get Help" banner on stdout for
            # every exception unless told not to.
            litellm.suppress_debug_info = True
            if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
                # Rebind rather than append so other registrations stay untouched.
                litellm.custom_provider_map = [
                    *litellm.custom_provider_map,
                    {"provider": PROVIDER, "custom_handler": OfflineLLM()},
                ]
            _loaded = litellm
    return _loaded


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
