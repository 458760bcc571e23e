"""What every worker process holds, built once in its composition root (``app.py``).

Settings → logging and tracing → broker (middlewares) → database → outbox relay →
LLM client, plus declared publishers and durable subscribers with retry and
dead-lettering. Services add their handlers; :meth:`Runtime.app` gives the ASGI app.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import uuid
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream
from faststream.rabbit import Channel, RabbitPublisher, RabbitQueue
from sqlalchemy import MetaData

from shared.asgi import database_check, make_worker_app
from shared.broker import DURABLE_ACK, current_delivery, durable_router, make_broker
from shared.budgets import BudgetGuard
from shared.contracts.base import Message
from shared.contracts.jobs import JobChunk, JobFailed
from shared.contracts.prompts import PromptActivated  # a handler's annotation: module level
from shared.db import make_engine, make_sessionmaker, warm_pool
from shared.db_tracing import instrument
from shared.messaging import UnknownMessageError, message_schema
from shared.outbox import OutboxRelay
from shared.rpc import RpcServer
from shared.settings import LecternSettings, get_settings
from shared.telemetry import current_message, setup_logging
from shared.topology import (
    command_queue,
    commands_exchange,
    dead_letter_exchange,
    declare_command_queue,
    declare_failure_path,
    events_exchange,
)

log = logging.getLogger("lectern.runtime")
BROKER_WAIT_S = 120.0  # how long a starting process waits for RabbitMQ before giving up


def freeze_startup_heap() -> int:
    """Move what startup built (modules, classes, pools) out of the collector's way.

    A worker holds about half a million objects once its imports are done (litellm
    alone is most of them), and every full collection walked all of them: 150-270 ms
    with the event loop stopped, several times a minute while a course is generated.
    They live as long as the process, so they are collected once here and frozen;
    later collections walk only what requests create. Returns how many were frozen.
    """
    gc.collect()
    gc.freeze()
    gc.enable()  # a service's ``__main__`` turns the collector off while it imports
    return gc.get_freeze_count()


class Runtime:
    """The shared parts of one service process."""

    def __init__(
        self, service: str, metadata: MetaData, settings: LecternSettings | None = None
    ) -> None:
        self.service = service
        self.settings = settings or get_settings(service)
        setup_logging(service, self.settings.log_level)
        self.broker = make_broker(self.settings)
        self.engine = make_engine(self.settings)
        if self.settings.otlp_endpoint:  # spans per statement only when they go somewhere
            instrument(self.engine, service)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.metadata = metadata
        self.publishers: dict[str, RabbitPublisher] = {}
        self.durable_queues: list[str] = []
        self.command_targets: list[str] = []
        self.relay = OutboxRelay(self.sessionmaker, metadata, self.broker, self.publishers)
        self._llm: Any = None
        self._prompts: Any = None
        self._commands: Any = None
        self._finished = False
        self.rpc = RpcServer(service)  # queries: ``@runtime.rpc.query("get_course")``
        self.uses_llm = False
        self.started = False
        self.startup_failed = False  # set by services that call the LLM: warmed at startup
        self.freeze_heap = False  # serve() sets it: freeze the heap once started
        self.startup_hooks: list[Any] = []
        self.shutdown_hooks: list[Any] = []
        self._background: set[asyncio.Task[None]] = set()
        self.budgets = BudgetGuard()  # spent token budgets: no LLM call for their work
        # every service may stream text and report failures and LLM usage
        self.chunks = self.event_publisher(JobChunk)
        self.event_publisher(JobFailed)

    # -- publishing ---------------------------------------------------------------
    def event_publisher(self, cls: type[Message]) -> RabbitPublisher:
        """Declare (once) the publisher of event ``cls`` on ``lectern.events``."""
        return self._publisher(cls, events_exchange)

    def command_publisher(self, cls: type[Message]) -> RabbitPublisher:
        """Declare (once) the publisher of command ``cls`` on ``lectern.commands``."""
        return self._publisher(cls, commands_exchange)

    def _publisher(self, cls: type[Message], exchange: Any) -> RabbitPublisher:
        if cls.SCHEMA not in self.publishers:
            self.publishers[cls.SCHEMA] = self.broker.publisher(
                exchange=exchange,
                routing_key=cls.routing_key(),
                title=f"{cls.SCHEMA}:publish",
                description=(cls.__doc__ or "").strip(),
                schema=cls,
                persist=True,
                mandatory=True,
            )
        return self.publishers[cls.SCHEMA]

    async def publish(self, message: Message) -> None:
        """Publish ``message`` now through its declared publisher (with confirms)."""
        publisher = self.publishers[message.SCHEMA]
        await publisher.publish(
            message.to_wire(),
            message_id=message.message_id,
            correlation_id=message.correlation_id,
        )

    async def publish_chunk(self, chunk: JobChunk) -> None:
        """Publish a ``job.chunk`` (ephemeral streamed text)."""
        await self.publish(chunk)

    def sends_commands_to(self, service: str) -> None:
        """Declare ``service``'s command queue at startup, so commands wait there while
        it is down instead of being unroutable."""
        if service not in self.command_targets:
            self.command_targets.append(service)

    # -- consuming ----------------------------------------------------------------
    def durable_subscriber(
        self, queue: RabbitQueue, exchange: Any, *, ordered: bool = False, prefetch: int = 1
    ) -> Any:
        """A subscriber on a durable queue with bounded retries and a DLQ.

        Handlers run concurrently, up to the prefetch count; ``ordered`` handles one
        message at a time, in queue order (pair it with an ``ordered`` queue), unless
        ``prefetch`` lets the handler take several and keep their order itself.
        """
        router = durable_router(queue.name, self.settings)
        channel = Channel(prefetch_count=prefetch, publisher_confirms=True, on_return_raises=True)
        subscriber = router.subscriber(
            queue, exchange, ack_policy=DURABLE_ACK, channel=channel if ordered else None
        )
        self.broker.include_router(router)
        self.durable_queues.append(queue.name)
        return subscriber

    def commands(self) -> Any:
        """The subscriber on ``<service>.commands``; add handlers with ``filter=for_schema``.

        A catch-all is added last when the app is built: a command no handler knows
        is dead-lettered with a ``job.failed`` naming it, never silently dropped.
        """
        if self._commands is None:
            self._commands = self.durable_subscriber(command_queue(self.service), commands_exchange)
        return self._commands

    def _finish_subscribers(self) -> None:
        """Add what goes last: the unknown-command catch-all and the RPC dispatcher."""
        if self._finished:
            return
        self._finished = True
        if self.rpc.handlers:
            self.rpc.attach(self.broker)
        if self._commands is None:
            return
        service = self.service

        @self._commands()
        async def unknown_command() -> None:
            msg = current_delivery(self.broker)
            raise UnknownMessageError(f"{service} has no handler for {message_schema(msg)!r}")

    # -- LLM ----------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        """The LLM client (built on first use)."""
        if self._llm is None:
            from shared.contracts.llm import LLMCallCompleted
            from shared.llm import LLMClient

            self.event_publisher(LLMCallCompleted)
            self._llm = LLMClient(
                self.settings,
                service=self.service,
                on_call_completed=self._report_llm_call,
                before_call=self._check_budget,
            )
            self._watch_budgets()
        return self._llm

    def _check_budget(self) -> None:
        """Refuse an LLM call for work whose account's token budget is spent."""
        self.budgets.check(current_message.get())

    def _watch_budgets(self) -> None:
        """Learn spent budgets: each ``budget.exhausted`` at once (this process's own
        exclusive queue), and the ones spent before it started from the gateway."""
        from shared.contracts.budgets import BudgetExhausted

        spent = RabbitQueue(
            f"{self.service}.budget-exhausted.{uuid.uuid4().hex[:12]}",
            exclusive=True,
            auto_delete=True,
            routing_key=BudgetExhausted.routing_key(),
        )

        @self.broker.subscriber(spent, events_exchange)
        async def budget_exhausted(body: dict[str, Any]) -> None:
            event = BudgetExhausted.model_validate(body)
            self.budgets.mark_spent(event.payload.account, event.payload.period)

        async def spent_before() -> None:
            from shared import rpc

            try:
                answer = await rpc.request(self.broker, "gateway", "spent_budgets", {}, timeout=2)
            except Exception as exc:  # the gateway may start after us: it announces later
                log.warning("could not ask the gateway for spent budgets: %s", exc)
                return
            for item in answer or []:
                self.budgets.mark_spent(str(item["account"]), str(item["period"]))

        async def ask_in_background() -> None:
            # not on the start path: a worker must not wait for the gateway to start
            self._background.add(asyncio.create_task(spent_before()))

        if self.service != "gateway":
            self.on_startup(ask_in_background)

    async def _report_llm_call(self, payload: Any) -> None:
        from shared.contracts.llm import LLMCallCompleted

        origin = current_message.get()
        if isinstance(origin, Message):
            event = origin.follow(LLMCallCompleted, payload)
        else:
            event = LLMCallCompleted(job_id="system", correlation_id="system", payload=payload)
        await self.publish(event)

    @property
    def prompts(self) -> Any:
        """Where the service's LLM calls get their prompts, rendered by name (built once).

        The prompt registry, through a cache that each ``prompt.activated`` clears at
        once (this process has its own exclusive queue for them), falling back to the
        shipped templates when the registry cannot be asked.
        """
        if self._prompts is None:
            from shared import rpc
            from shared.llm.registry import RegistryPrompts

            async def ask(query: str, body: dict[str, Any]) -> Any:
                timeout = self.settings.prompt_timeout_s
                return await rpc.request(self.broker, "prompts", query, body, timeout=timeout)

            source = RegistryPrompts(ask, label=self.settings.prompt_label)
            changes = RabbitQueue(
                f"{self.service}.prompt-activated.{uuid.uuid4().hex[:12]}",
                exclusive=True,
                auto_delete=True,
                routing_key=PromptActivated.routing_key(),
            )

            @self.broker.subscriber(changes, events_exchange)
            async def prompt_activated(event: PromptActivated) -> None:
                source.invalidate(event.payload.name, event.payload.label)

            self._prompts = source
        return self._prompts

    def generation_deps(self) -> Any:
        """What generation logic needs: database, LLM client, prompts, chunk publisher, relay."""
        from shared.generation import GenerationDeps

        self.uses_llm = True  # warmed up before the service reports ready
        return GenerationDeps(
            sessionmaker=self.sessionmaker,
            llm=self.llm,
            publish_chunk=self.publish_chunk,
            wake_relay=self.relay.wake,
            prompts=self.prompts,
        )

    # -- lifecycle ----------------------------------------------------------------
    def on_startup(self, hook: Any) -> None:
        """Await ``hook()`` at startup, once the database pool is warm, before ready."""
        self.startup_hooks.append(hook)

    def on_shutdown(self, hook: Any) -> None:
        """Await ``hook()`` at shutdown, once the consumers have stopped."""
        self.shutdown_hooks.append(hook)

    async def startup(self) -> None:
        """Connect, start consumers and the relay (for apps that own the broker, e.g. FastAPI)."""
        self._finish_subscribers()
        await self._wait_for_broker()
        await self.broker.start()
        await self._after_startup()

    async def shutdown(self) -> None:
        """Stop the relay, the broker and the database pool."""
        await self._on_shutdown()
        await self.broker.stop()
        await self._after_shutdown()

    async def _wait_for_broker(self) -> None:
        """Connect to RabbitMQ before starting, retrying while it is unreachable.

        A worker started while the broker is down (a restart, an outage) would otherwise
        fail to start its consumers yet keep serving ``/healthz``: not ready forever and
        never restarted. It waits instead, and exits after ``BROKER_WAIT_S`` without one.
        """
        deadline = asyncio.get_running_loop().time() + BROKER_WAIT_S
        delay = 0.5
        while True:
            try:
                await self.broker.connect()
                return
            except Exception as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    log.critical("broker unreachable for %ss; stopping: %s", BROKER_WAIT_S, exc)
                    raise
                log.warning("broker unreachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _after_startup(self) -> None:
        try:
            for exchange in (commands_exchange, events_exchange, dead_letter_exchange):
                await self.broker.declare_exchange(exchange)
            for queue in self.durable_queues:
                await declare_failure_path(self.broker, queue)
            for service in self.command_targets:
                await declare_command_queue(self.broker, service)
            await warm_pool(self.engine, self.settings.db_pool_size)
            for hook in self.startup_hooks:
                await hook()
            self.relay.start()
            if self.uses_llm:
                await self.llm.warm_up()  # load the models' libraries now, not in a request
            if self.freeze_heap:
                freeze_startup_heap()
        except Exception:
            # a half-started worker must not look ready; stop the process instead
            log.critical("startup failed; stopping", exc_info=True)
            self.startup_failed = True
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        self.started = True

    async def started_check(self) -> str | None:
        """Readiness check: None once startup finished."""
        return None if self.started else "startup not complete"

    async def _on_shutdown(self) -> None:
        await self.relay.stop()

    async def _after_shutdown(self) -> None:
        for hook in self.shutdown_hooks:
            await hook()
        if self._llm is not None:
            await self._llm.aclose()
        await self.engine.dispose()

    def app(self, title: str) -> AsgiFastStream:
        """The service's ASGI app: consumers, health, readiness, metrics, AsyncAPI."""
        self._finish_subscribers()
        app = make_worker_app(
            self.broker,
            title=title,
            checks=[self.started_check, database_check(self.engine)],
            logger=logging.getLogger(f"lectern.{self.service}.app"),
            on_startup=[self._wait_for_broker],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
        )
        app.after_shutdown(self._after_shutdown)
        return app

    def serve(self, app: Any) -> None:
        """Serve ``app`` with uvicorn on the configured host and port.

        ``LECTERN_PROFILE=<file>`` runs it under cProfile and writes the stats there on
        shutdown (the benchmarks' ``--profile``).
        """
        port = self.settings.http_port or 8000
        self.freeze_heap = True  # a process of its own: its startup heap can be frozen
        profile_to = os.environ.get("LECTERN_PROFILE")
        profiler = None
        if profile_to:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            # uvicorn raises the SIGTERM it caught again once shut down: let it return
            signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            uvicorn.run(app, host=self.settings.http_host, port=port, log_config=None)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile_to)
        if self.startup_failed:
            raise SystemExit(1)
