"""Database spans: one CLIENT span per SQL statement run inside a trace, as its child.

Written on SQLAlchemy's cursor events rather than an instrumentation package (none
matching this OpenTelemetry release is published); attributes follow the database
semantic conventions, and the statement text is cut short (it may hold user data).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_tracer = trace.get_tracer("lectern.db")
_KEY = "_lectern_span"
STATEMENT_MAX = 300


def instrument(engine: AsyncEngine, schema: str) -> None:
    """Trace every statement ``engine`` runs (spans named ``<OPERATION> <schema>``).

    ``LECTERN_TRACE_DB=0`` turns it off.
    """
    if os.environ.get("LECTERN_TRACE_DB", "1") == "0":
        return
    sync = engine.sync_engine

    @event.listens_for(sync, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = _tracer.start_span(
            f"{operation} {schema}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": schema,
                "db.operation.name": operation,
                "db.query.text": statement[:STATEMENT_MAX],
            },
        )
        if context is not None:
            setattr(context, _KEY, span)

    @event.listens_for(sync, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        span = getattr(context, _KEY, None)
        if span is not None:
            span.end()

    @event.listens_for(sync, "handle_error")
    def _error(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, _KEY, None)
        if span is not None:
            error = exception_context.original_exception
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
