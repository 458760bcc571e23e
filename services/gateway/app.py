"""Composition root of the gateway: FastAPI owning a plain RabbitBroker in its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from services.gateway import handlers, rate_limits, spa, unavailable
from services.gateway.budgets import keep_budget_gauge, spent_accounts
from services.gateway.http_metrics import HttpMetrics
from services.gateway.inputs import validation_error
from services.gateway.live import EventHub
from services.gateway.routes import assessments, auth, courses, jobs, lessons, prompts, sources
from services.gateway.sse import PING_S, StreamHandoff
from services.gateway.store import metadata
from services.gateway.streams import EventLog
from services.gateway.uploads import BodySizeLimitWithUploads
from shared.asgi import database_check, metrics_response, readiness
from shared.asyncapi import build_document
from shared.contracts.assessment import GenerateExercise
from shared.contracts.budgets import BudgetExhausted
from shared.contracts.content import ReviseLesson
from shared.contracts.planner import FinalizeCourse, PlanCourse, RefinePlan
from shared.contracts.sources import IngestSource
from shared.db import make_engine
from shared.metrics import SSE_OPEN_STREAMS
from shared.runtime import Runtime

runtime = Runtime("gateway", metadata)
for command in (
    PlanCourse,
    RefinePlan,
    FinalizeCourse,
    ReviseLesson,
    GenerateExercise,
    IngestSource,
):
    runtime.command_publisher(command)
runtime.sends_commands_to("planner")
runtime.sends_commands_to("content")
runtime.sends_commands_to("assessment")
hub = EventHub()
runtime.event_publisher(BudgetExhausted)
# the event log stores one event at a time, in queue order: its own two connections,
# without a pre-ping round trip per event (it retries on a dead connection)
event_log = EventLog(
    runtime.sessionmaker,
    runtime.settings,
    runtime.relay.wake,
    writer=make_engine(runtime.settings, pool_size=2, pre_ping=False),
)
live = handlers.register(runtime, event_log, hub)


@runtime.rpc.query("spent_budgets")
async def spent_budgets(body: dict[str, Any]) -> Any:
    """Accounts whose token budget is spent this month (for services that start)."""
    return await spent_accounts(runtime.sessionmaker, runtime.settings)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await runtime.startup()
    hub.closing = False  # an earlier lifespan in this process may have closed it
    # fan-out published while this replica's live queue was gone (a broker reconnect)
    # is lost: the streams then check the log for what they missed, and the replica
    # says hello again, in case the others forgot it meanwhile
    reconnects = (await runtime.broker.connect()).reconnect_callbacks
    reconnects.add(hub.check_soon)
    reconnects.add(live.announce_soon)
    background = [
        asyncio.create_task(live.keep_announcing()),
        asyncio.create_task(hub.keep_checking(event_log)),
        # uvicorn waits for open responses before it shuts down: streams end first
        asyncio.create_task(hub.close_on_server_exit()),
        asyncio.create_task(hub.keep_alive(PING_S)),
        asyncio.create_task(keep_budget_gauge(runtime.sessionmaker, runtime.settings, every=15.0)),
        asyncio.create_task(rate_limits.keep_tidy(runtime.sessionmaker, every=60.0)),
    ]
    yield
    hub.close_all()
    for task in background:
        task.cancel()
    await runtime.shutdown()
    if event_log.writer is not None:
        await event_log.writer.dispose()


app = FastAPI(
    title="Lectern",
    version="0.1.0",
    description="Plan a course in a chat, then watch it being written (REST + SSE).",
    lifespan=lifespan,
)
app.add_middleware(
    BodySizeLimitWithUploads,  # source uploads may be larger (LECTERN_SOURCE_MAX_BYTES)
    max_bytes=runtime.settings.max_body_bytes,
    upload_max_bytes=runtime.settings.source_max_bytes,
)
app.add_middleware(StreamHandoff)  # event streams run outside the layers below
app.add_middleware(HttpMetrics)  # outermost: refused bodies are counted too
app.add_exception_handler(RequestValidationError, validation_error)
unavailable.install(app)  # the database away (a restart): 503, not 500
SSE_OPEN_STREAMS.set_function(lambda: hub.open_streams)
app.state.runtime = runtime
app.state.settings = runtime.settings
app.state.hub = hub
app.state.event_log = event_log
app.include_router(auth.router)
app.include_router(courses.router)
app.include_router(lessons.router)
app.include_router(sources.router)
app.include_router(assessments.router)
app.include_router(prompts.router)
app.include_router(prompts.admin)
app.include_router(jobs.router)


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz", include_in_schema=False)
async def readyz() -> JSONResponse:
    problems = await readiness(
        runtime.broker, [runtime.started_check, database_check(runtime.engine)]
    )
    return JSONResponse({"ready": not problems, "problems": problems}, 503 if problems else 200)


@app.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    payload, content_type = metrics_response()
    return Response(payload, media_type=content_type)


@app.get("/docs/asyncapi.json", include_in_schema=False)
async def asyncapi_json() -> dict[str, Any]:
    """The whole broker contract (every command and event), for internal systems."""
    return build_document()


spa.mount(app)  # last: its catch-all route must not shadow the API
