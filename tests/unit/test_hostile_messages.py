"""Hostile input to a durable subscriber, in memory (TestRabbitBroker), and the wire helpers.

The end-to-end barrage is ``tests/e2e/test_hostile_messages.py``; this is the fast check
that each kind of bad message is dead-lettered once, at once, with a reason, and that
the helpers reading untrusted bodies and headers never raise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, RabbitMessage, RabbitQueue, TestRabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

from shared.broker import DURABLE_ACK, durable_router
from shared.contracts.jobs import JobFailed
from shared.contracts.planner import PlanCourse
from shared.frames import tolerate_malformed_frames
from shared.messaging import ERROR_HEADER, for_schema, is_permanent, job_failed_for
from shared.settings import LecternSettings
from shared.topology import commands_exchange, dead_letter_exchange, events_exchange
from shared.wire import (
    ATTEMPT_HEADER,
    InvalidBody,
    attempt_of,
    decode_body,
    parse_delivery,
    property_text,
    publishable_headers,
    read_envelope,
    redeliveries_of,
    scan_envelope,
)

QUEUE = "unit.commands"
LIMIT = 64 * 1024


def _command(**payload: Any) -> dict[str, Any]:
    body = PlanCourse(
        message_id="m-1",
        job_id="job-1",
        correlation_id="corr-1",
        payload={"course_id": "c", "topic": "Go"},
    ).to_wire()
    body["payload"].update(payload)
    return body


async def _raw(msg: Any) -> bytes:
    return bytes(msg.body)


@dataclass
class Harness:
    broker: RabbitBroker
    handled: list[Any] = field(default_factory=list)
    dead: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    retried: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send(self, body: Any, **kwargs: Any) -> None:
        kwargs.setdefault("content_type", "application/json")
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.broker.publish(
            raw, exchange=commands_exchange, routing_key="unit.plan_course", **kwargs
        )

    @property
    def reasons(self) -> list[str]:
        return [str(headers[ERROR_HEADER]) for _, headers in self.dead]


def _harness() -> Harness:
    settings = LecternSettings(
        service_name="unit", max_attempts=4, retry_base_delay_ms=1, max_message_bytes=LIMIT
    )
    # as make_broker builds it: our parser, FastStream's telemetry outside our middleware
    broker = RabbitBroker(parser=parse_delivery, middlewares=[RabbitTelemetryMiddleware()])
    h = Harness(broker)
    router = durable_router(QUEUE, settings)
    commands = router.subscriber(
        RabbitQueue(QUEUE, routing_key="unit.*"), commands_exchange, ack_policy=DURABLE_ACK
    )

    @commands(filter=for_schema(PlanCourse))
    async def plan(cmd: PlanCourse) -> None:
        if h.fail_with is not None:
            raise h.fail_with
        h.handled.append(cmd)

    broker.include_router(router)  # no catch-all: a schema no handler takes must still go

    @broker.subscriber(
        RabbitQueue(f"{QUEUE}.dlq", routing_key=QUEUE), dead_letter_exchange, decoder=_raw
    )
    async def dlq(body: bytes, msg: RabbitMessage) -> None:
        h.dead.append((body, dict(msg.headers)))

    @broker.subscriber(f"{QUEUE}.retry", decoder=_raw)
    async def retry(body: bytes, msg: RabbitMessage) -> None:
        h.retried.append(dict(msg.headers))

    @broker.subscriber(RabbitQueue("unit.job-failed", routing_key="job.failed"), events_exchange)
    async def failed(body: dict[str, Any]) -> None:
        h.failed.append(body)

    return h


BAD_BODIES = [
    (b"hello", "not valid json"),
    (b"", "empty"),
    (b"\xff\xfe", "not utf-8"),
    (b"[1, 2]", "json array, not an object"),
    (b"null", "json null, not an object"),
    (b'{"job_id": "job-1", "payload": {"x": NaN}}', "nan is not json"),
    (b'{"job_id": "job-1", "payload": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001, "too deeply"),
    (json.dumps(_command(topic="Go\x00lang")).encode(), "payload.topic contains a nul"),
    (json.dumps(_command(topic="Go\ud800")).encode(), "lone surrogate"),
    (json.dumps(_command(duration_hours=-1)).encode(), "payload.duration_hours"),
    (json.dumps(_command(topic="x" * 100_000)).encode(), "message of"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES, ids=[r for _, r in BAD_BODIES])
async def test_bad_bodies_are_dead_lettered_once_at_once(body: bytes, reason: str) -> None:
    h = _harness()
    async with TestRabbitBroker(h.broker):
        await h.send(body)
    assert not h.handled and not h.retried
    assert len(h.dead) == 1, h.dead
    dead_body, headers = h.dead[0]
    assert dead_body == body  # kept as it came, for inspection or replay
    assert reason in h.reasons[0].lower(), h.reasons[0]
    assert headers[ATTEMPT_HEADER] == 1 and headers["x-lectern-failed-queue"] == QUEUE
    told = {f["job_id"] for f in h.failed}
    assert told == ({"job-1"} if b'"job-1"' in body[:200] else set())
    assert all(f["payload"]["retryable"] is False for f in h.failed)


async def test_a_schema_no_handler_takes_is_dead_lettered_with_its_name() -> None:
    h = _harness()
    async with TestRabbitBroker(h.broker):
        await h.send({**_command(), "schema": "planner.plan_course.v9"})
        await h.send({**_command(), "schema": "planner.plan_course.v9"}, content_type="text/xml")
    assert not h.handled and len(h.dead) == 2
    assert "has no handler for 'planner.plan_course.v9'" in h.reasons[0]
    assert "content-type 'text/xml'" in h.reasons[1]  # what is wrong first
    assert [f["payload"]["failed_schema"] for f in h.failed] == ["planner.plan_course.v9"] * 2


@pytest.mark.parametrize("attempt", ["abc", -5, 2**63 - 1, 1.5, [1], None, True])
async def test_garbage_attempt_headers_count_as_a_first_attempt(attempt: Any) -> None:
    h = _harness()
    h.fail_with = RuntimeError("the model provider is down")  # transient: retried
    async with TestRabbitBroker(h.broker):
        await h.send(_command(), headers={ATTEMPT_HEADER: attempt})
    assert not h.dead and len(h.retried) == 1
    assert h.retried[0][ATTEMPT_HEADER] == 2


@pytest.mark.parametrize("garbage", [7, ["00-abc"], {"a": 1}, "00-not-a-trace-01"])
async def test_a_valid_command_with_garbage_trace_headers_is_handled(garbage: Any) -> None:
    h = _harness()
    headers = {"traceparent": garbage, "tracestate": garbage, "baggage": garbage}
    async with TestRabbitBroker(h.broker):
        await h.send(_command(), headers={**headers, ATTEMPT_HEADER: "abc"})
    assert len(h.handled) == 1 and not h.dead and not h.retried


async def test_a_content_type_that_is_not_json_is_refused() -> None:
    h = _harness()
    async with TestRabbitBroker(h.broker):
        await h.send(_command(), content_type="text/plain")
        await h.send(_command(), content_type="application/json; charset=utf-8")
    assert len(h.dead) == 1 and "content-type 'text/plain'" in h.reasons[0]
    assert len(h.handled) == 1


async def test_a_failed_job_failed_gets_no_job_failed() -> None:
    h = _harness()
    body = JobFailed(job_id="job-1", correlation_id="c", payload={"reason": "x", "retryable": True})
    async with TestRabbitBroker(h.broker):
        await h.send(body.to_wire())  # no handler for it here
    assert len(h.dead) == 1 and not h.failed


def test_job_failed_names_the_job_or_else_the_correlation() -> None:
    def failed(**envelope: Any) -> JobFailed | None:
        body = {"message_id": "m", "schema": "planner.plan_course.v1", **envelope}
        return job_failed_for(json.dumps(body).encode(), "r", retryable=False, attempts=1)

    told = failed(job_id="j" * 300, correlation_id="corr")
    assert told is not None and told.job_id == "corr"  # a cut id would name another job
    assert failed(job_id=42, correlation_id=["x"]) is None
    assert failed(job_id="a\x00b") is None
    one, other = failed(job_id="job-a"), failed(job_id="job-b")
    assert one and other and one.message_id != other.message_id  # a shared message id
    again = failed(job_id="job-a")
    assert again and again.message_id == one.message_id  # a repeat is told once
    cut = json.dumps({"job_id": "job-c", "payload": {"topic": "x" * 100}}).encode()[:60]
    told = job_failed_for(cut, "r", retryable=False, attempts=1)
    assert told is not None and told.job_id == "job-c"


def test_envelope_of_a_huge_body_is_read_from_its_start_only() -> None:
    envelope = {"message_id": "m", "job_id": "j", "schema": "s.v1"}
    huge = json.dumps({**envelope, "payload": {"x": "y" * 2_000_000}}).encode()
    assert scan_envelope(huge) == envelope
    assert read_envelope(huge, max_bytes=1024) == envelope
    late = json.dumps({"payload": {"x": "y" * 100_000}, **envelope}).encode()
    assert read_envelope(late, max_bytes=1024) == {}
    nested = b'{"job_id": "j", "p": ' + b"[" * 50_000 + b"]" * 50_000 + b', "schema": "s"}'
    assert scan_envelope(nested, limit=len(nested)) == {"job_id": "j", "schema": "s"}
    for junk in [b"", b"[", b'{"a', b'{"a": tru', b"\xff" * 10, b'{"a": [1, "]"}, "b": "c"}']:
        assert isinstance(scan_envelope(junk), dict)
    assert scan_envelope(b'{"a": [1, "]"}, "b": "c"}') == {"b": "c"}


def test_counters_in_headers_never_raise() -> None:
    for garbage in ["abc", -5, 0, 10**30, 1e30, float("nan"), True, None, [1], {"a": 1}]:
        assert attempt_of({ATTEMPT_HEADER: garbage}, 4) == 1
        assert redeliveries_of({"x-delivery-count": garbage}) in (0, 1_000_000)
    assert attempt_of({ATTEMPT_HEADER: 3}, 4) == 3
    assert redeliveries_of({"x-delivery-count": 2}) == 2


def test_received_headers_and_properties_can_be_sent_again() -> None:
    from pamqp import encode

    headers = publishable_headers({"a": b"\xff\xfe", "b": [b"\xc3"], "c": {"d": b"x"}, "n": 1})
    encode.field_table(headers)  # raises on bytes
    assert headers["a"] == bytearray(b"\xff\xfe")
    assert property_text(b"\xff id") == "\ufffd id"
    assert len(property_text("é" * 300).encode()) <= 255  # type: ignore[union-attr]
    assert property_text(None) is None


def test_decode_body_errors_are_permanent() -> None:
    with pytest.raises(InvalidBody) as caught:
        decode_body(b"{")
    assert is_permanent(caught.value)


def test_a_malformed_header_frame_is_read_not_fatal() -> None:
    from datetime import UTC, datetime

    from pamqp import commands, frame, header

    class NotUtf8(str):
        def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
            return b"\xff\xfe"

    class FarFuture(datetime):
        def timestamp(self) -> float:
            return float(2**63 - 1)

    far = FarFuture(2020, 1, 1, tzinfo=UTC)
    properties = commands.Basic.Properties(
        content_type=NotUtf8("x"),
        message_id=NotUtf8("m"),
        timestamp=far,
        headers={NotUtf8("k"): "v", "when": far},
    )
    data = frame.marshal(header.ContentHeader(0, 10, properties), 1)
    tolerate_malformed_frames()
    _, _, read = frame.unmarshal(data)  # pamqp 4.0.1 alone raises: the connection closes
    assert read.properties.content_type == "\ufffd\ufffd"
    assert read.properties.timestamp is None
    assert read.properties.headers == {"\ufffd\ufffd": "v", "when": None}
