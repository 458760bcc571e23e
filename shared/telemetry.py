"""Tracing and logging set-up shared by every service.

Traces: an OpenTelemetry tracer provider named after the service, exporting over
OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Context travels in AMQP headers
(FastStream's telemetry middleware), so one request is one trace across services.

Logs: one JSON object per line carrying ``service``, ``job_id`` and ``trace_id``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

current_job_id: ContextVar[str | None] = ContextVar("lectern_job_id", default=None)
# the message being handled, so work it causes (LLM usage events) can follow it
current_message: ContextVar[Any] = ContextVar("lectern_message", default=None)
_provider: TracerProvider | None = None


def setup_tracing(service: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install (once per process) and return the global tracer provider."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": f"lectern-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def job_context(job_id: str | None, message: Any = None) -> Iterator[None]:
    """Tag every log line inside the block with ``job_id``; remember the message handled."""
    token = current_job_id.set(job_id)
    msg_token = current_message.set(message)
    try:
        yield
    finally:
        current_message.reset(msg_token)
        current_job_id.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with service, job and trace ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "job_id": current_job_id.get(),
            "trace_id": current_trace_id(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("LiteLLM", "litellm", "httpx", "aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
