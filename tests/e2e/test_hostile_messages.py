"""Malformed and hostile messages straight to every service's queues (issue 8).

A generated corpus goes to the command routing keys (``planner.*``, ``content.*``,
``assessment.*``, ``prompts.*`` on ``lectern.commands``), straight into the command
queues, and straight into every durable event queue (the default exchange), plus a few
through ``lectern.events`` to reach several queues at once. For each message:

- it lands in ``<queue>.dlq`` of every queue that took it, once, with a reason in
  ``x-lectern-error`` that names what is wrong, and ``x-lectern-attempt`` = 1: input
  that can never succeed is not retried with back-off (no retry counted anywhere);
- a message naming a job (``job_id``, else ``correlation_id``) gets a ``job.failed``
  on ``lectern.events`` for that job, not retryable, after 1 attempt; one naming none
  gets none (and a failed ``job.failed`` is never answered with another);
- afterwards every service is ready with its consumers attached, a valid command with
  garbage in its headers is handled normally, and a course still completes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest

from shared.frames import tolerate_malformed_frames
from tests.support.client import guest_token, ready_course
from tests.support.processes import Cluster

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
PREFIX = f"hostile-{RUN}"
CASE_HEADER = "x-hostile-case"
MB = 1024 * 1024

COMMAND_QUEUES = {
    "planner.plan_course": "planner.commands",
    "planner.refine_plan": "planner.commands",
    "planner.finalize_course": "planner.commands",
    "content.write_lesson": "content.commands",
    "content.revise_lesson": "content.commands",
    "assessment.generate_exercise": "assessment.commands",
    "prompts.seed_templates": "prompts.commands",  # the registry takes no command at all
}
EVENT_QUEUES = {
    "planner.on-lesson-written": "lesson.written",
    "planner.on-assessment-ready": "assessment.ready",
    "planner.on-job-failed": "job.failed",
    "assessment.on-lesson-written": "lesson.written",
    "assessment.on-lesson-revised": "lesson.revised",
    "prompts.llm-calls": "llm.call_completed",
    "gateway.event-log": "job.chunk",  # bound to '#': any event
}
QUEUES = sorted({*COMMAND_QUEUES.values(), *EVENT_QUEUES})


class Raw(str):
    """A header or property value sent as bytes that are not UTF-8 (as a non-Python
    client may): the AMQP encoder writes whatever ``encode`` returns."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"\xff\xfe not utf-8 \xc3"


class FarFuture(datetime):
    """A timestamp property past year 9999 (milliseconds of year 2262 read as seconds)."""

    def timestamp(self) -> float:
        return float(2**63 - 1)


@dataclass(frozen=True)
class Target:
    """Where a message goes: an exchange and routing key, the queue taking it."""

    exchange: str  # "" is the default exchange: straight into ``queue``
    routing_key: str
    queue: str
    schema: str  # the type the queue expects there

    @property
    def label(self) -> str:
        return f"{self.exchange or 'direct'}:{self.routing_key}"


@dataclass
class Case:
    category: str
    target: Target
    body: bytes
    reason: tuple[str, ...]  # what the dead-letter reason must say (any of, lower case)
    job: str | None  # the job.failed must carry this job_id; None: no job.failed
    correlation: str | None = None  # and this correlation_id (default: the job)
    dlqs: frozenset[str] = frozenset()  # default: the target's queue
    content_type: Any = "application/json"
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: Any = None  # AMQP properties
    amqp_correlation: Any = None
    timestamp: Any = None
    id: str = ""

    def __post_init__(self) -> None:
        self.dlqs = self.dlqs or frozenset({self.target.queue})


class Corpus:
    """Builds the cases; every id carries the run's prefix, so a stray job.failed shows."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.n = 0

    def next_id(self, kind: str) -> str:
        self.n += 1
        return f"{PREFIX}-{kind}-{self.n}"

    def envelope(
        self, schema: Any, payload: Any, *, job: bool = True, correlation: bool = True
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"message_id": self.next_id("msg")}
        if job:
            body["job_id"] = self.next_id("job")
        if correlation:
            body["correlation_id"] = self.next_id("corr")
        body.update({"tenant_id": "hostile-tenant", "schema": schema, "payload": payload})
        return body

    def add(
        self, category: str, target: Target, body: Any, reason: str | tuple[str, ...], **kw: Any
    ) -> Case:
        if isinstance(body, dict):
            raw = json.dumps(body).encode()
            names_job = body.get("job_id") if isinstance(body.get("job_id"), str) else None
            corr = body.get("correlation_id")
            corr = corr if isinstance(corr, str) else None
            kw.setdefault("job", names_job or corr)
            kw.setdefault("correlation", corr or names_job)
        else:
            raw = body
            kw.setdefault("job", None)
        if body_schema(raw).startswith("job.failed."):
            kw["job"] = None  # a failed job.failed is never answered with another
        reasons = (reason,) if isinstance(reason, str) else reason
        case = Case(category, target, raw, tuple(r.lower() for r in reasons), **kw)
        case.id = self.next_id("case")
        self.cases.append(case)
        return case


def body_schema(body: bytes) -> str:
    """The schema a (maybe broken) body names, read as its publisher wrote it."""
    found = re.search(rb'"schema": "([^"]*)"', body[:4096])
    return found.group(1).decode() if found else ""


def course() -> str:
    return f"{PREFIX}-course-{uuid.uuid4().hex[:8]}"


def valid_payload(schema: str) -> dict[str, Any]:
    """A payload the type accepts (for a course that does not exist)."""
    c = course()
    lesson = {
        "course_id": c,
        "module_id": "m-1",
        "lesson_id": "l-1",
        "order": 1,
        "title": "Joins",
        "version": 1,
        "markdown": "# Joins",
        "model": "offline/lectern",
        "input_tokens": 1,
        "output_tokens": 1,
    }
    payloads: dict[str, dict[str, Any]] = {
        "planner.plan_course.v1": {
            "course_id": c,
            "topic": "SQL window functions",
            "level": "beginner",
            "duration_hours": 6,
            "language": "en",
        },
        "planner.refine_plan.v1": {"course_id": c, "text": "More practice, please"},
        "planner.finalize_course.v1": {"course_id": c},
        "content.write_lesson.v1": {
            "course_id": c,
            "course_title": "SQL",
            "module": {
                "module_id": "m-1",
                "order": 1,
                "title": "Joins",
                "description": "Inner and outer joins",
                "learning_objectives": ["Write a join"],
                "estimated_hours": 1,
            },
            "outline": ["Joins"],
            "profile": {"topic": "SQL"},
        },
        "content.revise_lesson.v1": {"course_id": c, "order": 1, "feedback": "Shorter"},
        "assessment.generate_exercise.v1": {"course_id": c, "order": 1, "difficulty": "easier"},
        "prompts.seed_templates.v1": {"name": "welcome_plan"},
        "lesson.written.v1": lesson,
        "lesson.revised.v1": {**lesson, "previous_version": 1, "feedback": "Shorter"},
        "assessment.ready.v1": {
            "course_id": c,
            "module_id": "m-1",
            "lesson_id": "l-1",
            "order": 1,
            "lesson_version": 1,
            "quiz_id": "q-1",
            "multiple_choice": 3,
            "open_questions": 1,
            "exercise": None,
            "exercise_note": "no code",
            "input_tokens": 1,
            "output_tokens": 1,
        },
        "llm.call_completed.v1": {
            "service": "planner",
            "task": "plan",
            "prompt_name": "welcome_plan",
            "prompt_version": "1",
            "model": "offline/lectern",
            "requested_model": "offline/lectern",
            "input_tokens": 1,
            "output_tokens": 1,
            "latency_ms": 1.0,
            "cost_usd": 0.0,
            "ttft_ms": None,
            "status": "ok",
            "attempts": 1,
            "fallback_used": False,
        },
        "job.failed.v1": {"reason": "boom", "retryable": False},
        "job.chunk.v1": {"step": "welcome_plan", "text": "hello", "index": 0},
    }
    return copy.deepcopy(payloads[schema])


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def with_payload(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``payload`` with ``path`` (dotted) set to ``value``, or removed for ``...``."""
    out = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


# wrong payloads per type: (path, value, what the reason names); ``...`` removes it
WRONG: dict[str, list[tuple[str, Any, str]]] = {
    "planner.plan_course.v1": [
        ("topic", ..., "payload.topic"),
        ("topic", 12345, "payload.topic"),
        ("duration_hours", -5, "payload.duration_hours"),
        ("duration_hours", "ten", "payload.duration_hours"),
        ("duration_hours", 1e308, "payload.duration_hours"),
        ("level", "expert", "payload.level"),
        ("language", "en'; DROP TABLE planner.courses;--", "payload.language"),
        ("topic", "x" * 50_000, "payload.topic"),
        ("topic", nested(60), "payload.topic"),
        ("topic", "Py\x00thon", "nul character"),
        ("topic", "Py\ud800thon", "surrogate"),
        ("expectations", "\u202eevil\u200b" * 1000, "payload.expectations"),
        ("auto_finalize", {"yes": True}, "payload.auto_finalize"),
    ],
    "planner.refine_plan.v1": [
        ("text", ..., "payload.text"),
        ("text", "y" * 100_000, "payload.text"),
        ("course_id", "", "payload.course_id"),
        ("text", ["a", "list"], "payload.text"),
    ],
    "planner.finalize_course.v1": [
        ("course_id", "z" * 10_000, "payload.course_id"),
        ("course_id", None, "payload.course_id"),
    ],
    "content.write_lesson.v1": [
        ("module", ..., "payload.module"),
        ("module.order", -1, "payload.module.order"),
        ("outline", "not a list", "payload.outline"),
        ("module.estimated_hours", 0, "payload.module.estimated_hours"),
    ],
    "content.revise_lesson.v1": [
        ("order", -3, "payload.order"),
        ("order", "first", "payload.order"),
        ("feedback", "no\x00pe", "nul character"),
    ],
    "assessment.generate_exercise.v1": [
        ("difficulty", "impossible", "payload.difficulty"),
        ("order", 0, "payload.order"),
    ],
    "lesson.written.v1": [
        ("order", -1, "payload.order"),
        ("lesson_id", ..., "payload.lesson_id"),
        ("version", "one", "payload.version"),
        ("markdown", "# Null\x00byte", "nul character"),
        ("input_tokens", -5, "payload.input_tokens"),
    ],
    "lesson.revised.v1": [("previous_version", ..., "payload.previous_version")],
    "assessment.ready.v1": [
        ("multiple_choice", -3, "payload.multiple_choice"),
        ("exercise", "none", "payload.exercise"),
    ],
    "llm.call_completed.v1": [
        ("status", "weird", "payload.status"),
        ("input_tokens", -1, "payload.input_tokens"),
    ],
    "job.failed.v1": [
        ("reason", ..., "payload.reason"),
        ("retryable", "maybe", "payload.retryable"),
    ],
}

GARBAGE_HEADERS: list[dict[str, Any]] = [
    {"x-lectern-attempt": "abc"},
    {"x-lectern-attempt": -5},
    {"x-lectern-attempt": 2**63 - 1},
    {"x-lectern-attempt": str(10**30)},
    {"x-lectern-attempt": 1e30},
    # NaN and infinity cannot be sent at all: RabbitMQ closes the connection on them
    {"x-lectern-attempt": True},
    {"x-lectern-attempt": [1, 2]},
    {"x-lectern-attempt": {"a": 1}},
    {"x-lectern-attempt": None},
    {"x-lectern-attempt": Raw("3")},
    {"traceparent": "00-garbage-garbage-01", "tracestate": 5},
    {"x-lectern-routing-key": 42},
    {"x-lectern-error": "forged reason", "x-lectern-failed-queue": "nowhere"},
    {"x-delivery-count": "lots", "x-death": "not a list"},
    {Raw("x-key"): "a header whose name is not UTF-8"},
]


def targets() -> tuple[list[Target], list[Target]]:
    commands = [
        Target("lectern.commands", key, queue, f"{key}.v1") for key, queue in COMMAND_QUEUES.items()
    ]
    # straight into a command queue: the routing key is the queue's name
    commands.append(Target("", "planner.commands", "planner.commands", "planner.plan_course.v1"))
    events = [Target("", queue, queue, f"{event}.v1") for queue, event in EVENT_QUEUES.items()]
    return commands, events


def build_corpus() -> Corpus:
    corpus = Corpus()
    add = corpus.add
    commands, events = targets()
    everywhere = commands + events
    not_json = [
        (b"hello, lectern", "not valid json"),
        (b"<plan><topic>SQL</topic></plan>", "not valid json"),
        (b"{'single': 'quotes'}", "not valid json"),
        (b"\xff\xfe\xfa not utf-8", "not utf-8"),
        (b"\x00\x01\x02\x03", "not valid json"),
        (b"NaN", "not valid json"),
    ]
    not_object = [b"[1, 2, 3]", b"42", b"null", b'"just a string"', b"true", b"-0.5e3"]
    for i, target in enumerate(everywhere):
        body, reason = not_json[i % len(not_json)]
        add("not JSON", target, body, reason)
        add("JSON that is not an object", target, not_object[i % len(not_object)], "not an object")
        add("empty body", target, b"" if i % 2 else b"  \n ", "empty")
        # cut inside the payload: the job was named before the cut, so it is told
        envelope = corpus.envelope(target.schema, valid_payload(target.schema))
        whole = json.dumps(envelope)
        cut = whole[: whole.index('"payload"') + 15].encode()
        add(
            "truncated JSON",
            target,
            cut,
            "not valid json",
            job=envelope["job_id"],
            correlation=envelope["correlation_id"],
        )
    # cut before any id: nothing to tell
    add("truncated JSON", commands[0], b'{"message_id": "' + PREFIX.encode(), "not valid json")

    # unknown versions, wrong and missing schemas
    for target in everywhere:
        if target.queue == "gateway.event-log":
            continue  # the event log stores events of any type and version
        v9 = target.schema.replace(".v1", ".v9")
        add("unknown schema version (v9)", target, corpus.envelope(v9, {}), v9)
    planner = commands[0]
    add(
        "wrong schema",
        planner,
        corpus.envelope("content.write_lesson.v1", {}),
        "content.write_lesson.v1",
    )
    add(
        "wrong schema", events[0], corpus.envelope("assessment.ready.v1", {}), "assessment.ready.v1"
    )
    add("wrong schema", commands[3], corpus.envelope("bogus", {}), "'bogus'")
    add("wrong schema", commands[1], corpus.envelope(12345, {}), "schema")
    missing = corpus.envelope("x", {"course_id": course()})
    del missing["schema"]
    add("missing schema", commands[1], missing, "payload.text")
    missing = corpus.envelope("x", valid_payload("lesson.written.v1"))
    del missing["schema"]  # straight into the queue: taken as v1 of the queue's name
    add("missing schema", events[3], missing, "assessment.on-lesson-written.v1")
    unknown_key = Target("lectern.commands", "planner.nope", "planner.commands", "")
    missing = corpus.envelope("x", {})
    del missing["schema"]
    add("missing schema", unknown_key, missing, "planner.nope.v1")

    # a known schema with a wrong payload
    by_schema: dict[str, list[Target]] = defaultdict(list)
    for target in everywhere:
        by_schema[target.schema].append(target)
    for schema, wrongs in WRONG.items():
        for i, (path, value, reason) in enumerate(wrongs):
            target = by_schema[schema][i % len(by_schema[schema])]
            payload = with_payload(valid_payload(schema), path, value)
            add("wrong payload", target, corpus.envelope(schema, payload), reason)
    plan = planner.schema
    deep = b'{"a": ' * 5000 + b'"bottom"' + b"}" * 5000
    for payload, reason in [
        (deep, "nested too deeply"),
        (b'{"topic": "SQL", "duration_hours": ' + b"9" * 5000 + b"}", "not valid json"),
        (b'{"topic": "SQL", "duration_hours": NaN}', "nan"),
    ]:
        envelope = corpus.envelope(plan, "PAYLOAD")  # JSON cannot say these: spliced in
        body = json.dumps(envelope).encode().replace(b'"PAYLOAD"', payload)
        job, correlation = envelope["job_id"], envelope["correlation_id"]
        add("wrong payload", planner, body, reason, job=job, correlation=correlation)
    add("wrong payload", planner, corpus.envelope(plan, "not an object"), "payload")
    add("wrong payload", planner, corpus.envelope(plan, [1, 2]), "payload")
    for path, value, reason in [
        ("job_id", "j" * 300, "job_id"),
        ("tenant_id", "", "tenant_id"),
        ("occurred_at", "yesterday", "occurred_at"),
        ("user_id", "u" * 1000, "user_id"),
    ]:
        body = corpus.envelope(plan, valid_payload(plan))
        body[path] = value
        add(
            "wrong envelope",
            planner,
            body,
            reason,
            job=body["correlation_id"] if path == "job_id" else body["job_id"],
            correlation=body["correlation_id"],
        )
    gateway = events[-1]
    chunk = "job.chunk.v1"
    for key, value, reason in [
        ("job_id", ..., "job_id"),  # the correlation_id is then the job told
        ("job_id", "j" * 300, "job_id"),
        ("message_id", 12345, "message_id"),
        ("schema", ..., "schema"),
        ("payload", {"text": "a\x00b"}, "nul character"),
        ("payload", {"k\x00ey": 1}, "nul character"),
    ]:
        body = with_payload(corpus.envelope(chunk, valid_payload(chunk)), key, value)
        job = body["job_id"] if key != "job_id" else body["correlation_id"]
        add("wrong payload", gateway, body, reason, job=job)

    # several megabytes, strings of 10 MB
    for target, path, size in [
        (planner, "expectations", 3 * MB),
        (events[0], "markdown", 3 * MB),
        (events[3], "markdown", 4 * MB),
        (events[5], "output_preview", 3 * MB),
        (gateway, "text", 3 * MB),
        (commands[4], "feedback", 3 * MB),
        (planner, "topic", 10 * MB),
        (commands[1], "text", 10 * MB),
        (commands[5], "difficulty", 10 * MB),
        (events[4], "feedback", 10 * MB),
    ]:
        category = "string of 10 MB" if size >= 10 * MB else "payload of several MB"
        payload = with_payload(valid_payload(target.schema), path, "w" * size)
        add(category, target, corpus.envelope(target.schema, payload), "exceeds the limit")
    # the payload before the envelope: the job is past what is read of a huge body
    body = corpus.envelope(plan, with_payload(valid_payload(plan), "topic", "p" * 10 * MB))
    first = {"payload": body.pop("payload"), **body}
    add("string of 10 MB", planner, json.dumps(first).encode(), "exceeds the limit", job=None)
    add(
        "string of 10 MB", events[2], b"[" + b'"x",' * (10 * MB // 4) + b'"x"]', "exceeds the limit"
    )

    # garbage in the headers: still dead-lettered once, with the real reason
    for i, headers in enumerate(GARBAGE_HEADERS):
        target = everywhere[i % len(everywhere)]
        if target.queue == "gateway.event-log":
            body, reason = with_payload(corpus.envelope(chunk, {}), "job_id", ...), "job_id"
        else:
            v9 = (target.schema or "planner.x.v1").replace(".v1", ".v9")
            body, reason = corpus.envelope(v9, {}), v9
        add("garbage headers", target, body, reason, headers=headers)

    # wrong content types (a missing one is fine: plain clients leave it out)
    valid_plan = corpus.envelope(plan, valid_payload(plan))
    add("wrong content-type", planner, valid_plan, "content-type", content_type="text/plain")
    add(
        "wrong content-type",
        commands[1],
        corpus.envelope(commands[1].schema, valid_payload(commands[1].schema)),
        "content-type",
        content_type="application/octet-stream",
    )
    add(
        "wrong content-type",
        commands[4],
        corpus.envelope("content.revise_lesson.v9", {}),
        "content-type",
        content_type="application/xml",
    )
    add(
        "wrong content-type",
        gateway,
        corpus.envelope(chunk, valid_payload(chunk)),
        "content-type",
        content_type="text/html; charset=utf-8",
    )
    add(
        "wrong content-type",
        events[5],
        corpus.envelope("llm.call_completed.v1", valid_payload("llm.call_completed.v1")),
        "content-type",
        content_type=Raw("application/json"),
    )
    add(
        "wrong content-type",
        commands[5],
        corpus.envelope("assessment.generate_exercise.v9", {}),
        "assessment.generate_exercise.v9",
        content_type=None,
    )

    # duplicate message ids: a repeat, and two jobs that share one id
    repeat = corpus.envelope("planner.plan_course.v9", {})
    add("duplicate message id", planner, repeat, "v9")
    add("duplicate message id", planner, repeat, "v9")
    shared_id = corpus.next_id("shared-msg")
    for _ in range(2):
        body = corpus.envelope("content.revise_lesson.v9", {})
        body["message_id"] = shared_id
        add("duplicate message id", commands[4], body, "v9", message_id=shared_id)

    # valid commands for a course that does not exist
    for target, reason in [
        (commands[1], "not found"),
        (commands[2], "not found"),
        (commands[4], "no lesson 1"),
        (commands[5], "no assessed lesson"),
        (Target("", "planner.commands", "planner.commands", ""), "not found"),
    ]:
        schema = target.schema or "planner.refine_plan.v1"
        body = corpus.envelope(schema, valid_payload(schema))
        add("valid command, no such course", target, body, reason)

    # missing ids
    bad = with_payload(valid_payload(plan), "duration_hours", -1)
    add("missing ids", planner, corpus.envelope(plan, bad, job=False), "job_id")
    add("missing ids", planner, corpus.envelope(plan, bad, correlation=False), "correlation_id")
    body = corpus.envelope(plan, valid_payload(plan), job=False, correlation=False)
    body.pop("message_id")
    add("missing ids", planner, body, ("job_id", "correlation_id"))
    body = corpus.envelope(plan, valid_payload(plan), job=False, correlation=False)
    body.update(job_id=42, correlation_id=["x"])
    add("missing ids", planner, body, "job_id")
    add(
        "missing ids",
        commands[2],
        corpus.envelope("planner.finalize_course.v9", {}),
        "v9",
        message_id=Raw("m"),
        amqp_correlation=Raw("c"),
    )

    far = FarFuture(2020, 1, 1, tzinfo=UTC)
    add(
        "missing ids",
        events[5],
        corpus.envelope("llm.call_completed.v9", {}),
        "v9",
        timestamp=far,
        message_id=Raw("m"),
    )
    add(
        "missing ids",
        gateway,
        with_payload(corpus.envelope(chunk, {}), "job_id", ...),
        "job_id",
        timestamp=far,
        content_type=None,
    )

    # through lectern.events: every queue bound to the key takes it
    fanout = Target("lectern.events", "lesson.written", "planner.on-lesson-written", "")
    both = frozenset({"planner.on-lesson-written", "assessment.on-lesson-written"})
    add("fan-out", fanout, b"not json at all", "not valid json", dlqs=both | {gateway.queue})
    wrong = with_payload(valid_payload("lesson.written.v1"), "order", -1)
    # the event log stores any well-formed event: only the lesson's consumers refuse it
    add("fan-out", fanout, corpus.envelope("lesson.written.v1", wrong), "payload.order", dlqs=both)
    return corpus


# ---------------------------------------------------------------------------- the run
async def publish(channel: aio_pika.abc.AbstractChannel, case: Case) -> None:
    if case.target.exchange:
        exchange = await channel.get_exchange(case.target.exchange)
    else:
        exchange = channel.default_exchange
    message = aio_pika.Message(
        case.body,
        content_type=case.content_type,
        headers={CASE_HEADER: case.id, **case.headers},
        message_id=case.message_id,
        correlation_id=case.amqp_correlation,
        timestamp=case.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await exchange.publish(message, routing_key=case.target.routing_key)


@dataclass
class DeadLetter:
    queue: str
    headers: dict[str, Any]


async def metric_total(client: httpx.AsyncClient, url: str, name: str, where: str = "") -> float:
    text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and where in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def retries_and_exhausted(cluster: Cluster) -> tuple[float, float]:
    retries = exhausted = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for service in cluster.services.values():
            if service.proc is None or service.proc.poll() is not None:
                continue  # reported as exited
            retries += await metric_total(client, service.url, "lectern_message_retries_total")
            exhausted += await metric_total(
                client, service.url, "lectern_dead_letters_total", 'cause="exhausted"'
            )
    return retries, exhausted


async def test_hostile_messages_are_dead_lettered_and_no_consumer_dies(
    cluster: Cluster, infra: dict[str, str]
) -> None:
    url = infra["AMQP_URL"]
    corpus = build_corpus()
    cases = {c.id: c for c in corpus.cases}
    assert len(cases) >= 100
    expected_dlq = {(c.id, q) for c in cases.values() for q in c.dlqs}
    expected_jobs: dict[str, list[Case]] = defaultdict(list)
    for c in cases.values():
        if c.job is not None:
            expected_jobs[c.job].append(c)
    retries_before, exhausted_before = await retries_and_exhausted(cluster)

    tolerate_malformed_frames()  # this test reads what it sent, properties and all
    # a valid command with garbage headers is handled as if they were not there
    valid_job, valid_corr = f"{PREFIX}-valid-job", f"{PREFIX}-valid-corr"
    planned: list[dict[str, Any]] = []

    conn = await aio_pika.connect(url)
    dead: dict[str, list[DeadLetter]] = defaultdict(list)
    failed_events: list[dict[str, Any]] = []
    async with conn:
        listen = await conn.channel()
        events = await listen.get_exchange("lectern.events")
        failed_queue = await listen.declare_queue(exclusive=True, auto_delete=True)
        await failed_queue.bind(events, routing_key="job.failed")
        await failed_queue.bind(events, routing_key="course.plan_proposed")

        async def on_failed(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                body = json.loads(message.body)
                if body.get("schema") == "course.plan_proposed.v1":
                    if body.get("correlation_id") == valid_corr:
                        planned.append(body)
                    return
                ids = [body.get("job_id"), body.get("correlation_id"), body.get("causation_id")]
                ids.append((body.get("payload") or {}).get("failed_message_id"))
                if any(isinstance(i, str) and i.startswith(PREFIX) for i in ids):
                    failed_events.append(body)

        await failed_queue.consume(on_failed)

        # dead letters: ours are taken (acked), anyone else's stay unacked and go back
        reader = await conn.channel()
        await reader.set_qos(prefetch_count=0)

        def on_dead(queue: str) -> Any:
            async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                case_id = (message.headers or {}).get(CASE_HEADER)
                if isinstance(case_id, str) and case_id.startswith(PREFIX):
                    dead[case_id].append(DeadLetter(queue, dict(message.headers or {})))
                    await message.ack()

            return handle

        for queue in QUEUES:
            dlq = await reader.declare_queue(f"{queue}.dlq", passive=True)
            await dlq.consume(on_dead(queue))

        publisher = await conn.channel(publisher_confirms=True, on_return_raises=True)
        garbage = {"x-lectern-attempt": "abc", "x-delivery-count": "many", "traceparent": 7}
        valid = {
            "message_id": f"{PREFIX}-valid-msg",
            "job_id": valid_job,
            "correlation_id": valid_corr,
            "schema": "planner.plan_course.v1",
            "payload": valid_payload("planner.plan_course.v1"),
        }
        commands = await publisher.get_exchange("lectern.commands")
        await commands.publish(
            aio_pika.Message(json.dumps(valid).encode(), headers=garbage),
            routing_key="planner.plan_course",
        )
        for case in cases.values():
            await publish(publisher, case)

        deadline = asyncio.get_running_loop().time() + 240
        while asyncio.get_running_loop().time() < deadline:
            found = {(cid, d.queue) for cid, ds in dead.items() for d in ds}
            told = {e["job_id"] for e in failed_events}
            if expected_dlq <= found and set(expected_jobs) <= told and planned:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # anything late: a second copy, a stray job.failed

    problems: list[str] = []
    for case in cases.values():
        letters = dead.get(case.id, [])
        where = Counter(d.queue for d in letters)
        what = f"{case.id} [{case.category} → {case.target.label}]"
        if set(where) != set(case.dlqs) or any(n != 1 for n in where.values()):
            problems.append(f"{what}: dead-lettered in {dict(where)}, expected {set(case.dlqs)}")
        for letter in letters:
            reason = letter.headers.get("x-lectern-error")
            attempt = letter.headers.get("x-lectern-attempt")
            if not isinstance(reason, str) or not any(r in reason.lower() for r in case.reason):
                problems.append(f"{what}: reason {reason!r} does not say {case.reason}")
            if attempt != 1 or isinstance(attempt, bool):
                problems.append(f"{what}: x-lectern-attempt {attempt!r} in {letter.queue}.dlq")
            if letter.headers.get("x-lectern-failed-queue") != letter.queue:
                problems.append(
                    f"{what}: failed queue {letter.headers.get('x-lectern-failed-queue')!r}"
                )
    told: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in failed_events:
        told[event["job_id"]].append(event)
    for job, events_for_job in told.items():
        if job not in expected_jobs:
            problems.append(f"job.failed for {job}, which no case expects: {events_for_job[0]}")
    for job, job_cases in expected_jobs.items():
        got = told.get(job, [])
        what = f"{job_cases[0].id} [{job_cases[0].category} → {job_cases[0].target.label}]"
        if not got:
            problems.append(f"{what}: no job.failed for job {job}")
            continue
        wanted_corr = job_cases[0].correlation or job
        for event in got:
            p = event["payload"]
            if event["correlation_id"] != wanted_corr:
                problems.append(f"{what}: job.failed correlation {event['correlation_id']!r}")
            if p["retryable"] is not False or p["attempts"] != 1:
                problems.append(
                    f"{what}: job.failed retryable={p['retryable']} attempts={p['attempts']}"
                )
            if not any(r in p["reason"].lower() for c in job_cases for r in c.reason):
                problems.append(f"{what}: job.failed reason {p['reason']!r}")
    # a repeat is told once (one event id); two jobs sharing a message id are told apart
    dup = [c for c in cases.values() if c.category == "duplicate message id"]
    repeat_ids = {e["message_id"] for e in told.get(dup[0].job or "", [])}
    shared_ids = {e["message_id"] for c in dup[2:] for e in told.get(c.job or "", [])}
    if len(repeat_ids) != 1 or len(shared_ids) != 2:
        problems.append(f"job.failed ids: repeat {repeat_ids}, shared message id {shared_ids}")

    # no retry with back-off anywhere, nothing exhausted
    retries_after, exhausted_after = await retries_and_exhausted(cluster)
    if retries_after != retries_before or exhausted_after != exhausted_before:
        problems.append(
            f"retries {retries_before} → {retries_after}, "
            f"exhausted dead letters {exhausted_before} → {exhausted_after}"
        )

    # the valid command with garbage headers was handled like any other
    if [p["job_id"] for p in planned] != [valid_job]:
        problems.append(f"the valid command with garbage headers was not planned: {planned}")
    # no service stopped, every consumer is still attached
    async with httpx.AsyncClient(timeout=10) as client:
        for service in cluster.services.values():
            if service.proc is None or service.proc.poll() is not None:
                problems.append(f"{service.name} exited")
                continue
            ready = await client.get(f"{service.url}/readyz")
            if ready.status_code != 200 or not ready.json()["ready"]:
                problems.append(f"{service.name} not ready: {ready.text}")
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        for queue in QUEUES:
            declared = await channel.declare_queue(queue, passive=True)
            if declared.declaration_result.consumer_count < 1:
                problems.append(f"{queue} has no consumer")

    # and a course still completes
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as client:
        try:
            async with asyncio.timeout(180):
                token = await guest_token(client)
                _, events_seen = await ready_course(client, token, topic="Resilient messaging")
        except (AssertionError, TimeoutError, httpx.HTTPError) as exc:
            problems.append(f"a course after the barrage did not complete: {exc!r}"[:500])
        else:
            print(f"a course after the barrage: {len(events_seen)} events to course.ready")

    categories = Counter(c.category for c in cases.values())
    lettered = Counter(cases[cid].category for cid in dead)
    failed_by = Counter(
        c.category for job in told if job in expected_jobs for c in expected_jobs[job]
    )
    example = {}
    for cid, letters in dead.items():
        example.setdefault(cases[cid].category, str(letters[0].headers.get("x-lectern-error")))
    print(
        f"\nhostile messages: {len(cases)} published, {sum(len(d) for d in dead.values())} "
        f"dead letters, {len(told)} jobs told with job.failed"
    )
    print(f"{'category':30} {'sent':>4} {'dead-lettered':>13} {'job.failed':>10}  a reason")
    for category, n in categories.items():
        reason = example.get(category, "")[:70]
        print(f"{category:30} {n:4} {lettered[category]:13} {failed_by[category]:10}  {reason}")
    for problem in problems:
        print("PROBLEM", problem)
    assert not problems, "\n".join(problems[:60]) + f"\n({len(problems)} problems)"
