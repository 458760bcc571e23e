"""Model prices from litellm's bundled price map, read without importing litellm.

The direct routes (see :mod:`shared.llm.client`) price a call from the same map litellm
uses (``model_prices_and_context_window_backup.json`` in its package, the local copy
``LITELLM_LOCAL_MODEL_COST_MAP`` points litellm to). Only the entry of a model asked for
is parsed and kept: the whole map is about 2 MB of JSON.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path

PRICE_MAP = "model_prices_and_context_window_backup.json"


def price_map_path() -> Path | None:
    """Where the installed litellm keeps its price map (found without importing it)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP
    return path if path.is_file() else None


@cache
def per_token(model: str) -> tuple[float, float] | None:
    """The input and output price per token of ``model`` (``openai/gpt-4o-mini`` or
    ``gpt-4o-mini``), or None when the map does not price it."""
    path = price_map_path()
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    names = [model]
    if "/" in model:
        names.append(model.split("/", 1)[1])
    decoder = json.JSONDecoder()
    for name in names:
        # the entry's key opens a line: a model's name inside another entry does not
        found = re.search(rf"^\s*{re.escape(json.dumps(name))}\s*:\s*(?=\{{)", text, re.M)
        if found is None:
            continue
        try:
            entry, _ = decoder.raw_decode(text, found.end())
        except ValueError:
            continue
        cost_in = entry.get("input_cost_per_token") if isinstance(entry, dict) else None
        cost_out = entry.get("output_cost_per_token") if isinstance(entry, dict) else None
        if isinstance(cost_in, int | float) and isinstance(cost_out, int | float):
            return float(cost_in), float(cost_out)
    return None


def cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """What a call of this size costs on ``model``, in USD (None when unpriced)."""
    prices = per_token(model)
    if prices is None:
        return None
    return input_tokens * prices[0] + output_tokens * prices[1]
