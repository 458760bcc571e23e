"""The prompt registry's subscribers and queries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.prompts import analytics, registry, service
from shared.contracts.llm import LLMCallCompleted
from shared.contracts.prompts import PromptActivated
from shared.llm.library import LIBRARY
from shared.messaging import for_schema
from shared.rpc import parse_query
from shared.runtime import Runtime
from shared.topology import event_queue, events_exchange


class Named(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class LabelRef(Named):
    label: str = Field("production", pattern=registry.LABEL_PATTERN)


class Author(BaseModel):
    author: str = Field(min_length=1, max_length=200, description="Who makes the change.")


class VersionRef(Named):
    version: int = Field(ge=1)


class DiffQuery(Named):
    a: int = Field(ge=1)
    b: int = Field(ge=1)


class SaveVersion(Named, Author):
    template: dict[str, Any]


class MoveLabel(LabelRef, Author):
    version: int = Field(ge=1)


class StartExperiment(LabelRef, Author):
    arms: list[dict[str, Any]]
    note: str = Field("", max_length=2000)


class StopExperiment(Author):
    experiment_id: str = Field(min_length=1, max_length=200)
    promote: int | None = Field(None, ge=1)


class Search(BaseModel):
    search: str = Field("", max_length=200)
    name: str | None = Field(None, max_length=200)


class ExperimentRef(BaseModel):
    experiment_id: str = Field(min_length=1, max_length=200)


def register(runtime: Runtime) -> None:
    """Log every LLM call of every service; answer the registry's queries."""
    runtime.commands()
    runtime.event_publisher(PromptActivated)
    sm = runtime.sessionmaker
    calls = runtime.durable_subscriber(
        event_queue("prompts.llm-calls", LLMCallCompleted.routing_key()), events_exchange
    )

    @calls(filter=for_schema(LLMCallCompleted))
    async def log_llm_call(event: LLMCallCompleted) -> None:
        """Record an LLM call in the execution log (idempotent by message_id)."""
        await service.log_execution(event, sm)

    async def seed() -> None:
        changed = await registry.seed(sm, LIBRARY)
        if changed:
            runtime.relay.wake()

    runtime.on_startup(seed)
    q = runtime.rpc.query

    @q("resolve")
    async def resolve(body: dict[str, Any]) -> Any:
        """What ``name@label`` resolves to, with the content of each version (for caches)."""
        ref = parse_query(LabelRef, body)
        return await registry.resolve(sm, ref.name, ref.label)

    @q("list_templates")
    async def list_templates(body: dict[str, Any]) -> Any:
        return await registry.list_templates(sm, parse_query(Search, body).search)

    @q("get_template")
    async def get_template(body: dict[str, Any]) -> Any:
        return await registry.get_template(sm, parse_query(Named, body).name)

    @q("get_version")
    async def get_version(body: dict[str, Any]) -> Any:
        ref = parse_query(VersionRef, body)
        return registry.version_json(await registry.get_version(sm, ref.name, ref.version))

    @q("diff")
    async def diff(body: dict[str, Any]) -> Any:
        query = parse_query(DiffQuery, body)
        return await registry.diff(sm, query.name, query.a, query.b)

    @q("create_version")
    async def create_version(body: dict[str, Any]) -> Any:
        query = parse_query(SaveVersion, body)
        return await registry.create_version(sm, query.name, query.template, author=query.author)

    @q("move_label")
    async def move_label(body: dict[str, Any]) -> Any:
        query = parse_query(MoveLabel, body)
        moved = await registry.move_label(
            sm, query.name, query.label, query.version, author=query.author
        )
        runtime.relay.wake()
        return moved

    @q("start_experiment")
    async def start_experiment(body: dict[str, Any]) -> Any:
        query = parse_query(StartExperiment, body)
        started = await registry.start_experiment(
            sm,
            query.name,
            query.label,
            {"arms": query.arms, "note": query.note},
            author=query.author,
        )
        runtime.relay.wake()
        return started

    @q("stop_experiment")
    async def stop_experiment(body: dict[str, Any]) -> Any:
        query = parse_query(StopExperiment, body)
        stopped = await registry.stop_experiment(
            sm, query.experiment_id, author=query.author, promote=query.promote
        )
        runtime.relay.wake()
        return stopped

    @q("analytics")
    async def version_analytics(body: dict[str, Any]) -> Any:
        return await analytics.version_stats(sm, parse_query(Search, body).name)

    @q("experiment_report")
    async def experiment_report(body: dict[str, Any]) -> Any:
        ref = parse_query(ExperimentRef, body)
        return await analytics.experiment_report(sm, ref.experiment_id)

    @q("record_feedback")
    async def record_feedback(body: dict[str, Any]) -> Any:
        return await service.record_feedback(sm, parse_query(service.FeedbackQuery, body))
