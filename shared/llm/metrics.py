"""Prometheus metrics of LLM calls, on the default registry.

- ``lectern_llm_tokens_total{service, task, model, prompt_version, direction}``:
  tokens used, ``direction`` is ``input`` or ``output``;
- ``lectern_llm_cost_usd_total{service, task, model}``: spend in US dollars
  (only calls whose model has a known price);
- ``lectern_llm_request_duration_seconds{service, task, model, status}``: wall time
  of a whole call, retries and back-off included; ``status`` is ``ok`` or ``error``;
- ``lectern_llm_time_to_first_token_seconds{service, task, model}``: from the start
  of the attempt that answered to its first text;
- ``lectern_llm_errors_total{service, task, kind}``: every failed attempt, including
  retried ones, and every invalid structured output; ``kind`` is ``rate_limit``,
  ``timeout``, ``provider_error`` or ``invalid_output``;
- ``lectern_llm_retries_total{service, task}``: attempts repeated on the same model;
- ``lectern_llm_fallbacks_total{service, task}``: switches to a fallback model;
- ``lectern_llm_requests_in_flight{service, task}``: calls under way in this process.

Labels are deliberately bounded: no job, course, user or prompt name values.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TOKENS = Counter(
    "lectern_llm_tokens_total",
    "Tokens used by LLM calls.",
    ["service", "task", "model", "prompt_version", "direction"],
)
COST_USD = Counter(
    "lectern_llm_cost_usd_total",
    "Cost of LLM calls in US dollars, for models with a known price.",
    ["service", "task", "model"],
)
REQUEST_DURATION = Histogram(
    "lectern_llm_request_duration_seconds",
    "Wall time of an LLM call, retries and back-off included.",
    ["service", "task", "model", "status"],
    # LLM calls range from sub-second (offline) to minutes (long lessons).
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "lectern_llm_time_to_first_token_seconds",
    "Time from the start of the answering attempt to its first streamed text.",
    ["service", "task", "model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
ERRORS = Counter(
    "lectern_llm_errors_total",
    "Failed LLM attempts and invalid structured outputs, by kind.",
    ["service", "task", "kind"],
)
RETRIES = Counter(
    "lectern_llm_retries_total",
    "LLM attempts repeated on the same model after a retryable error.",
    ["service", "task"],
)
FALLBACKS = Counter(
    "lectern_llm_fallbacks_total",
    "Switches from a failing model to the next fallback model.",
    ["service", "task"],
)
IN_FLIGHT = Gauge(
    "lectern_llm_requests_in_flight",
    "LLM calls under way in this process (retries and back-off included).",
    ["service", "task"],
)
