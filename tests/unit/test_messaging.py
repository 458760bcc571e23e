"""Unit tests of the messaging plumbing (no broker, or FastStream's TestRabbitBroker)."""

from __future__ import annotations

import json

from faststream.rabbit import RabbitBroker, TestRabbitBroker

from shared.contracts.jobs import JobChunk
from shared.contracts.planner import PlanCourse
from shared.messaging import PermanentError, backoff_seconds, is_permanent, job_failed_for
from shared.streaming import ChunkStreamer
from shared.topology import events_exchange


def _cmd() -> PlanCourse:
    return PlanCourse(job_id="j1", correlation_id="c1", payload={"course_id": "k", "topic": "Go"})


def test_job_failed_is_derived_from_the_failed_message() -> None:
    cmd = _cmd()
    failed = job_failed_for(json.dumps(cmd.to_wire()).encode(), "boom", retryable=True, attempts=3)
    assert failed is not None
    assert failed.job_id == "j1" and failed.correlation_id == "c1"
    assert failed.causation_id == cmd.message_id
    assert failed.payload.failed_schema == "planner.plan_course.v1"
    assert failed.payload.course_id == "k"
    again = job_failed_for(json.dumps(cmd.to_wire()).encode(), "boom", retryable=True, attempts=3)
    assert again is not None and again.message_id == failed.message_id  # deduplicated downstream


def test_job_failed_needs_a_job_id() -> None:
    assert job_failed_for(b"not json", "x", retryable=False, attempts=1) is None
    assert job_failed_for(b'{"payload": {}}', "x", retryable=False, attempts=1) is None
    assert job_failed_for(b"[1, 2]", "x", retryable=False, attempts=1) is None


def test_permanent_errors() -> None:
    try:
        PlanCourse.model_validate({"job_id": "j"})
    except Exception as exc:
        assert is_permanent(exc)
    assert is_permanent(PermanentError("no"))
    assert not is_permanent(RuntimeError("provider down"))


def test_backoff_grows_and_is_bounded() -> None:
    first, third = backoff_seconds(1, 500), backoff_seconds(3, 500)
    assert 0.4 <= first <= 0.6 and 1.6 <= third <= 2.4
    assert backoff_seconds(30, 500) <= 300


async def test_chunks_are_coalesced_and_numbered_per_attempt() -> None:
    broker = RabbitBroker()
    publisher = broker.publisher(exchange=events_exchange, routing_key="job.chunk")

    @broker.subscriber("test.chunks", events_exchange)
    async def sink(body: dict) -> None:  # TestRabbitBroker needs a consumer for the key
        pass

    async with TestRabbitBroker(broker):

        async def publish(chunk: JobChunk) -> None:
            await publisher.publish(chunk.to_wire())

        streamer = ChunkStreamer(
            publish, _cmd(), step="welcome_plan", min_interval=3600, max_chars=10
        )
        for word in ["alpha ", "beta ", "gamma ", "delta"]:
            await streamer.on_delta(word)
        await streamer.on_attempt(2)  # the stream was cut: start over
        await streamer.on_delta("fresh")
        await streamer.flush()

        sent = [call.args[0] for call in publisher.mock.call_args_list]
        # the first delta of an attempt goes at once; "delta" was unsent when it was cut
        assert [c["payload"]["text"] for c in sent] == ["alpha ", "beta gamma ", "fresh"]
        assert [c["payload"]["attempt"] for c in sent] == [1, 1, 2]
        assert [c["payload"]["index"] for c in sent] == [0, 1, 0]
        assert all(c["job_id"] == "j1" and c["schema"] == "job.chunk.v1" for c in sent)


async def test_the_first_chunk_of_each_attempt_is_not_held_back() -> None:
    sent: list[tuple[int, str]] = []

    async def publish(chunk: JobChunk) -> None:
        sent.append((chunk.payload.attempt, chunk.payload.text))

    # an interval far longer than the test: only "first of an attempt" can publish
    streamer = ChunkStreamer(publish, _cmd(), step="welcome_plan", min_interval=3600)
    await streamer.on_attempt(1)
    await streamer.on_delta("# Plan")
    assert sent == [(1, "# Plan")]  # at once, not min_interval later
    await streamer.on_delta(" for")
    await streamer.on_delta(" Go")
    assert sent == [(1, "# Plan")]  # later deltas are coalesced
    await streamer.on_attempt(2)  # cut: the retry's first text goes at once too
    await streamer.on_delta("# Plan again")
    assert sent == [(1, "# Plan"), (2, "# Plan again")]
    await streamer.on_delta(" later")
    await streamer.flush()
    assert sent[-1] == (2, " later")
