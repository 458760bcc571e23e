"""Drive Lectern over RabbitMQ alone: commands with publisher confirms, a job's events back.

::

    async with LecternBroker("amqp://guest:guest@127.0.0.1:5672/", tenant_id="acme") as lectern:
        job = await lectern.plan_course("SQL window functions", level="advanced",
                                        duration_hours=6, auto_finalize=True)
        async for event in lectern.events(job, idle_timeout=300):
            print(event.name, event.payload.get("done"), event.payload.get("total"))
        # the last event is course.ready; a job.failed raises JobFailed

How it works:

- A command is the envelope of :mod:`shared.contracts` (validated before it leaves:
  :class:`InvalidInput` names the field), published to ``lectern.commands`` with its
  routing key, persistent, ``mandatory`` and with **publisher confirms**: the call
  returns once the broker has taken it, raises :class:`Unroutable` when no queue is
  bound for it (the service was never deployed on this vhost) and
  :class:`PublishRejected` when the broker nacks it.
- Each job gets a durable queue of its own, ``lectern.client.<job_id>``, bound to
  ``lectern.events`` for the job-level events (everything except ``llm.*`` and
  ``prompt.*``; ``job.chunk`` unless ``chunks=False``) **before** the command is
  published, so no event can be missed. It outlives the connection (deleted by the
  broker after ``queue_expires`` seconds unused, or by this client after the job's
  final event), so events that arrive while the client is away wait for it.
- :meth:`LecternBroker.events` acknowledges an event when the caller asks for the next
  one. To resume after a disconnect or a crash, keep the :class:`JobHandle`
  (:meth:`JobHandle.to_dict`) and the ``message_id`` of the last event processed, then
  call ``events(handle, seen={that_id})``: the one event that may come again is
  skipped, nothing is lost, every event is seen once.

Every job-level event of every job passes through each such queue and is filtered here
by ``job_id`` (the broker cannot route on it): right for an internal system following a
handful of jobs at a time, not for thousands of concurrent watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import (
    AMQPConnectionError,
    AMQPError,
    ChannelClosed,
    ChannelNotFoundEntity,
    DeliveryError,
    ProbableAuthenticationError,
    PublishError,
)
from pydantic import ValidationError

import shared.contracts  # noqa: F401  (fills REGISTRY: the events to bind)
from shared.client.errors import (
    EventTimeout,
    InvalidInput,
    JobFailed,
    LecternError,
    PublishRejected,
    ServiceDown,
    SubscriptionLost,
    Unauthorized,
    Unroutable,
)
from shared.client.events import FINAL_EVENTS, Event, event_name
from shared.contracts.assessment import GenerateExercise, GenerateExercisePayload
from shared.contracts.base import EVENTS_EXCHANGE, REGISTRY, Message, new_id
from shared.contracts.content import ReviseLesson, ReviseLessonPayload
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    PlanCourse,
    PlanCoursePayload,
    RefinePlan,
    RefinePlanPayload,
)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
QUEUE_PREFIX = "lectern.client"
# not about one job: model usage is per call, prompt.activated per deployment
_NOT_JOB_EVENTS = ("llm.", "prompt.")


def redact(amqp_url: str) -> str:
    """``amqp_url`` without its password, for messages."""
    parts = urlsplit(amqp_url)
    if parts.password is None:
        return amqp_url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def job_event_keys(*, chunks: bool = True) -> list[str]:
    """Routing keys of the job-level events in the contracts (what a job queue binds)."""
    keys = {
        cls.routing_key()
        for cls in REGISTRY.values()
        if cls.KIND == "event" and not cls.routing_key().startswith(_NOT_JOB_EVENTS)
    }
    if not chunks:
        keys.discard("job.chunk")
    return sorted(keys)


@dataclass(frozen=True)
class JobHandle:
    """What identifies a job and its event queue; keep it (``to_dict``) to resume later."""

    job_id: str
    correlation_id: str
    queue: str
    final_events: tuple[str, ...]
    course_id: str | None = None
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (store it to resume after a restart)."""
        return {
            "job_id": self.job_id,
            "correlation_id": self.correlation_id,
            "queue": self.queue,
            "final_events": list(self.final_events),
            "course_id": self.course_id,
            "message_id": self.message_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobHandle:
        """The handle :meth:`to_dict` wrote."""
        return cls(
            job_id=data["job_id"],
            correlation_id=data["correlation_id"],
            queue=data["queue"],
            final_events=tuple(data["final_events"]),
            course_id=data.get("course_id"),
            message_id=data.get("message_id"),
        )


@dataclass(frozen=True)
class QueueInfo:
    """A queue's depth and consumers, read with a passive declare (``exists`` False: none)."""

    name: str
    exists: bool
    messages: int = 0
    consumers: int = 0


@dataclass
class _Watch:
    """State of one :meth:`LecternBroker.events` iteration."""

    seen: set[str] = field(default_factory=set)
    pending: AbstractIncomingMessage | None = None
    last_event_at: float = field(default_factory=time.monotonic)


def _invalid(exc: ValidationError) -> InvalidInput:
    fields = {
        ".".join(str(p) for p in e["loc"] if p != "payload") or "payload": e["msg"]
        for e in exc.errors()
    }
    return InvalidInput(
        "invalid command: " + "; ".join(f"{k}: {v}" for k, v in fields.items()),
        status=None,
        fields=fields,
    )


class LecternBroker:
    """A connection to Lectern's broker: send commands, follow their jobs' events.

    ``tenant_id`` and ``user_id`` go into every command's envelope; a course's later
    commands (refine, finalise, revise) must carry the same ones as its plan_course.
    """

    def __init__(
        self,
        amqp_url: str = DEFAULT_AMQP_URL,
        *,
        tenant_id: str = "default",
        user_id: str | None = None,
        queue_prefix: str = QUEUE_PREFIX,
        queue_expires: float = 24 * 3600,
        prefetch: int = 100,
        connect_timeout: float = 10.0,
        confirm_timeout: float = 30.0,
    ) -> None:
        self.amqp_url = amqp_url
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.queue_prefix = queue_prefix
        self.queue_expires = queue_expires
        self.prefetch = prefetch
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._connection: AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None

    # -- connection -----------------------------------------------------------------
    async def connect(self) -> LecternBroker:
        """Open the connection (``async with`` does it); :class:`ServiceDown` when refused."""
        try:
            self._connection = await aio_pika.connect(self.amqp_url, timeout=self.connect_timeout)
        except ProbableAuthenticationError as exc:
            raise Unauthorized(
                f"the broker at {redact(self.amqp_url)} refused the credentials (or the "
                "virtual host does not exist)"
            ) from exc
        except (AMQPConnectionError, OSError, TimeoutError) as exc:
            raise ServiceDown(
                f"cannot reach RabbitMQ at {redact(self.amqp_url)} ({exc.__class__.__name__})",
                url=redact(self.amqp_url),
            ) from exc
        except AMQPError as exc:  # the broker closed the handshake: e.g. an unknown vhost
            raise ServiceDown(
                f"RabbitMQ at {redact(self.amqp_url)} refused the connection (does the "
                "virtual host exist?)",
                url=redact(self.amqp_url),
            ) from exc
        return self

    async def close(self) -> None:
        """Close the connection; unacknowledged events go back to their queues."""
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._publish_channel = None

    async def __aenter__(self) -> LecternBroker:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connection(self) -> AbstractConnection:
        """The open connection (``connect`` first)."""
        if self._connection is None or self._connection.is_closed:
            raise LecternError("not connected: use `async with LecternBroker(...)` or connect()")
        return self._connection

    async def _channel(self) -> AbstractChannel:
        return await self.connection.channel(publisher_confirms=False)

    # -- publishing -----------------------------------------------------------------
    async def publish(self, message: Message, *, routing_key: str | None = None) -> None:
        """Publish ``message`` (persistent, mandatory) and wait for the broker's confirm.

        Raises :class:`Unroutable` when no queue is bound for it, :class:`PublishRejected`
        when the broker nacks it. ``routing_key`` defaults to the message type's.
        """
        key = routing_key or message.routing_key()
        exchange_name = message.exchange()
        if self._publish_channel is None or self._publish_channel.is_closed:
            self._publish_channel = await self.connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
        try:
            exchange = await self._publish_channel.get_exchange(exchange_name)
        except ChannelNotFoundEntity as exc:
            self._publish_channel = None
            raise ServiceDown(
                f"exchange {exchange_name} does not exist on {redact(self.amqp_url)}: "
                "are Lectern's services running on this virtual host?",
                url=redact(self.amqp_url),
            ) from exc
        amqp_message = aio_pika.Message(
            json.dumps(message.to_wire()).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
        )
        try:
            await exchange.publish(
                amqp_message, routing_key=key, mandatory=True, timeout=self.confirm_timeout
            )
        except PublishError as exc:
            raise Unroutable(
                f"no queue is bound for {key!r} on {exchange_name}: the broker returned the "
                "command (is the service that handles it deployed on this virtual host?)",
                exchange=exchange_name,
                routing_key=key,
            ) from exc
        except DeliveryError as exc:
            raise PublishRejected(f"the broker refused the command for {key!r}") from exc

    async def watch(
        self,
        *,
        job_id: str,
        correlation_id: str | None = None,
        final_events: Iterable[str] = ("course.ready", "job.failed"),
        course_id: str | None = None,
        chunks: bool = True,
        queue: str | None = None,
    ) -> JobHandle:
        """Declare and bind the job's durable event queue; publish the command after this.

        Use it for a command built by hand (then :meth:`publish` it); the command methods
        below do both.
        """
        name = queue or f"{self.queue_prefix}.{job_id}"
        channel = await self._channel()
        try:
            declared = await channel.declare_queue(
                name,
                durable=True,
                arguments={"x-expires": int(self.queue_expires * 1000)},
            )
            exchange = await channel.get_exchange(EVENTS_EXCHANGE)
            for key in job_event_keys(chunks=chunks):
                await declared.bind(exchange, routing_key=key)
        except ChannelNotFoundEntity as exc:
            raise ServiceDown(
                f"exchange {EVENTS_EXCHANGE} does not exist on {redact(self.amqp_url)}: "
                "are Lectern's services running on this virtual host?",
                url=redact(self.amqp_url),
            ) from exc
        finally:
            if not channel.is_closed:
                await channel.close()
        return JobHandle(
            job_id=job_id,
            correlation_id=correlation_id or job_id,
            queue=name,
            final_events=tuple(final_events),
            course_id=course_id,
        )

    async def send(
        self,
        message: Message,
        final_events: Iterable[str],
        *,
        chunks: bool = True,
    ) -> JobHandle:
        """Watch the command's job, then publish it; the handle to follow its events."""
        course_id = getattr(message.payload, "course_id", None)
        handle = await self.watch(
            job_id=message.job_id,
            correlation_id=message.correlation_id,
            final_events=final_events,
            course_id=course_id,
            chunks=chunks,
        )
        try:
            await self.publish(message)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.forget(handle)
            raise
        return dataclasses.replace(handle, message_id=message.message_id)

    def _envelope(self, job_id: str | None, correlation_id: str | None) -> dict[str, Any]:
        job = job_id or new_id()
        return {
            "job_id": job,
            "correlation_id": correlation_id or job,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
        }

    def _build(self, cls: type[Message], payload: Any, envelope: dict[str, Any]) -> Message:
        try:
            return cls(**envelope, payload=payload)
        except ValidationError as exc:
            raise _invalid(exc) from exc

    @staticmethod
    def _payload(cls: type[Any], **fields: Any) -> Any:
        try:
            return cls(**{k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            raise _invalid(exc) from exc

    # -- commands -------------------------------------------------------------------
    async def plan_course(
        self,
        topic: str,
        *,
        level: str | None = None,
        duration_hours: float | None = None,
        expectations: str | None = None,
        style: str | None = None,
        pace: str | None = None,
        goal_context: str | None = None,
        language: str | None = None,
        auto_finalize: bool = False,
        course_id: str | None = None,
        job_id: str | None = None,
        correlation_id: str | None = None,
        chunks: bool = True,
    ) -> JobHandle:
        """``planner.plan_course.v1``: the welcome plan (``course.plan_proposed``), or with
        ``auto_finalize`` the whole course (``course.ready``)."""
        payload = self._payload(
            PlanCoursePayload,
            course_id=course_id or new_id(),
            topic=topic,
            level=level,
            duration_hours=duration_hours,
            expectations=expectations,
            style=style,
            pace=pace,
            goal_context=goal_context,
            language=language,
            auto_finalize=auto_finalize,
        )
        message = self._build(PlanCourse, payload, self._envelope(job_id, correlation_id))
        final = FINAL_EVENTS["plan_course_auto" if auto_finalize else "plan_course"]
        return await self.send(message, final, chunks=chunks)

    async def refine_plan(
        self,
        course_id: str,
        text: str,
        *,
        job_id: str | None = None,
        correlation_id: str | None = None,
        chunks: bool = True,
    ) -> JobHandle:
        """``planner.refine_plan.v1``: the plan changed as ``text`` asks (plan_proposed)."""
        payload = self._payload(RefinePlanPayload, course_id=course_id, text=text)
        message = self._build(RefinePlan, payload, self._envelope(job_id, correlation_id))
        return await self.send(message, FINAL_EVENTS["refine_plan"], chunks=chunks)

    async def finalize_course(
        self,
        course_id: str,
        *,
        job_id: str | None = None,
        correlation_id: str | None = None,
        chunks: bool = True,
    ) -> JobHandle:
        """``planner.finalize_course.v1``: modules, lessons, assessments (``course.ready``)."""
        payload = self._payload(FinalizeCoursePayload, course_id=course_id)
        message = self._build(FinalizeCourse, payload, self._envelope(job_id, correlation_id))
        return await self.send(message, FINAL_EVENTS["finalize_course"], chunks=chunks)

    async def revise_lesson(
        self,
        course_id: str,
        order: int,
        feedback: str,
        *,
        job_id: str | None = None,
        correlation_id: str | None = None,
        chunks: bool = True,
    ) -> JobHandle:
        """``content.revise_lesson.v1``: lesson ``order`` rewritten (``lesson.revised``)."""
        payload = self._payload(
            ReviseLessonPayload, course_id=course_id, order=order, feedback=feedback
        )
        message = self._build(ReviseLesson, payload, self._envelope(job_id, correlation_id))
        return await self.send(message, FINAL_EVENTS["revise_lesson"], chunks=chunks)

    async def generate_exercise(
        self,
        course_id: str,
        order: int,
        difficulty: str,
        *,
        job_id: str | None = None,
        correlation_id: str | None = None,
        chunks: bool = True,
    ) -> JobHandle:
        """``assessment.generate_exercise.v1``: another exercise (``exercise.ready``)."""
        payload = self._payload(
            GenerateExercisePayload, course_id=course_id, order=order, difficulty=difficulty
        )
        message = self._build(GenerateExercise, payload, self._envelope(job_id, correlation_id))
        return await self.send(message, FINAL_EVENTS["generate_exercise"], chunks=chunks)

    # -- events ---------------------------------------------------------------------
    async def events(
        self,
        job: JobHandle,
        *,
        seen: Iterable[str] = (),
        timeout: float | None = None,
        idle_timeout: float | None = None,
        raise_on_failure: bool = True,
        keep_queue: bool = False,
    ) -> AsyncIterator[Event]:
        """The job's events, in the order the broker delivers them, until a final one.

        An event is acknowledged when the next one is asked for, so a crash leaves the
        event being processed in the queue. ``seen``: message ids already processed
        (at least the last one) — they are skipped when they come again. ``timeout``
        bounds the whole wait and ``idle_timeout`` each event (:class:`EventTimeout`).
        ``job.failed`` is yielded, then raises :class:`JobFailed` unless
        ``raise_on_failure`` is False. After the final event the queue is deleted
        (``keep_queue`` keeps it).
        """
        channel = await self._channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        try:
            queue = await channel.declare_queue(job.queue, passive=True)
        except (ChannelNotFoundEntity, ChannelClosed) as exc:
            raise SubscriptionLost(
                f"the event queue {job.queue} of job {job.job_id} no longer exists (unused "
                f"for longer than {self.queue_expires:g} s, or the job already ended)"
            ) from exc
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        tag = await queue.consume(inbox.put, no_ack=False)
        state = _Watch(seen=set(seen))
        deadline = time.monotonic() + timeout if timeout is not None else None
        try:
            while True:
                if state.pending is not None:
                    await state.pending.ack()
                    state.pending = None
                message = await _next(inbox, deadline, state.last_event_at, idle_timeout)
                event = _parse(message)
                if event is None or not _belongs(event, job) or event.message_id in state.seen:
                    await message.ack()  # not this job's, unreadable, or a repeat
                    continue
                if event.message_id:
                    state.seen.add(event.message_id)
                state.pending = message
                state.last_event_at = time.monotonic()
                yield event
                if event.name in job.final_events:
                    await message.ack()
                    state.pending = None
                    if not keep_queue:
                        await queue.cancel(tag)
                        await channel.queue_delete(job.queue)
                    if event.name == "job.failed" and raise_on_failure:
                        raise JobFailed(event.body)
                    return
        finally:
            if not channel.is_closed:
                await channel.close()  # anything not acknowledged goes back to the queue

    async def forget(self, job: JobHandle) -> None:
        """Delete the job's event queue (when you no longer want its events)."""
        channel = await self._channel()
        try:
            await channel.queue_delete(job.queue)
        finally:
            if not channel.is_closed:
                await channel.close()

    # -- inspection -------------------------------------------------------------------
    async def queue_info(self, names: Iterable[str]) -> list[QueueInfo]:
        """Depth and consumers of each queue (passive declares: nothing is created)."""
        out: list[QueueInfo] = []
        channel = await self._channel()
        try:
            for name in names:
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except (ChannelNotFoundEntity, ChannelClosed):
                    out.append(QueueInfo(name, exists=False))
                    channel = await self._channel()  # a failed declare closes the channel
                    continue
                result = queue.declaration_result
                out.append(
                    QueueInfo(
                        name,
                        exists=True,
                        messages=int(result.message_count or 0),
                        consumers=int(result.consumer_count or 0),
                    )
                )
        finally:
            if not channel.is_closed:
                await channel.close()
        return out


async def _next(
    inbox: asyncio.Queue[AbstractIncomingMessage],
    deadline: float | None,
    last_event_at: float,
    idle_timeout: float | None,
) -> AbstractIncomingMessage:
    """The next delivery; the idle clock runs from the job's last event, not any delivery."""
    now = time.monotonic()
    limits = [
        limit - now
        for limit in (deadline, last_event_at + idle_timeout if idle_timeout else None)
        if limit is not None
    ]
    wait = max(0.0, min(limits)) if limits else None
    try:
        return await asyncio.wait_for(inbox.get(), wait)
    except TimeoutError as exc:
        idle = deadline is None or time.monotonic() < deadline
        raise EventTimeout(
            f"no event for {idle_timeout:g} s" if idle else "the job did not finish in time",
            idle=idle,
        ) from exc


def _parse(message: AbstractIncomingMessage) -> Event | None:
    try:
        body = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        return None
    return Event(
        event_name(body["schema"]),
        body,
        body.get("message_id"),
        redelivered=bool(message.redelivered),
    )


def _belongs(event: Event, job: JobHandle) -> bool:
    return event.job_id == job.job_id and event.correlation_id == job.correlation_id
