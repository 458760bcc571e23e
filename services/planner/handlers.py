"""Thin handlers: validate the contract, call the service, let the outbox publish."""

from __future__ import annotations

from faststream.rabbit import RabbitMessage

from services.planner import service
from shared.contracts.planner import PlanCourse, PlanProposed
from shared.messaging import for_schema
from shared.runtime import Runtime
from shared.streaming import delivery_ordinal
from shared.telemetry import job_context


def register(runtime: Runtime) -> None:
    """Attach the planner's subscribers and publishers to ``runtime``."""
    runtime.event_publisher(PlanProposed)
    runtime.uses_llm = True
    deps = service.PlannerDeps(
        sessionmaker=runtime.sessionmaker,
        llm=None,
        publish_chunk=runtime.publish_chunk,
        wake_relay=runtime.relay.wake,
    )
    commands = runtime.commands()

    @commands(filter=for_schema(PlanCourse))
    async def plan_course(cmd: PlanCourse, msg: RabbitMessage) -> None:
        """Plan a course: stream the welcome plan, store it, emit course.plan_proposed."""
        deps.llm = runtime.llm
        with job_context(cmd.job_id, cmd):
            await service.plan_course(cmd, deps, delivery=delivery_ordinal(msg))
