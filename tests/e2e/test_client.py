"""shared.client against the real services: the broker client and the gateway client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import pytest

from shared.client.broker import JobHandle, LecternBroker
from shared.client.errors import (
    Forbidden,
    InvalidInput,
    JobFailed,
    NotFound,
    SubscriptionLost,
    Unauthorized,
    Unroutable,
)
from shared.client.events import Event
from shared.client.http import LecternHTTP
from shared.contracts.planner import PlanCourse, PlanCoursePayload
from tests.support.client import collect_events
from tests.support.processes import ROOT, Cluster

pytestmark = pytest.mark.e2e


async def test_broker_client_runs_a_course_to_ready(
    cluster: Cluster, infra: dict[str, str]
) -> None:
    async with LecternBroker(infra["AMQP_URL"], tenant_id="acme-cli") as lectern:
        job = await lectern.plan_course(
            "Negotiation skills", duration_hours=4, goal_context="corporate", auto_finalize=True
        )
        assert job.final_events == ("course.ready", "job.failed") and job.message_id
        events = [e async for e in lectern.events(job, idle_timeout=120)]
        # the job's queue is gone once its final event was taken
        (info,) = await lectern.queue_info([job.queue])
        assert info.exists is False
        with pytest.raises(SubscriptionLost, match=job.queue):
            _ = [e async for e in lectern.events(job)]
    names = [e.name for e in events]
    assert names[-1] == "course.ready"
    assert all(e.job_id == job.job_id and e.correlation_id == job.job_id for e in events)
    assert all(e.body["tenant_id"] == "acme-cli" for e in events)
    assert "llm.call_completed" not in names, "only job-level events are bound"
    assert "job.chunk" in names, "the streamed text comes too"
    modules = next(e for e in events if e.name == "course.plan_finalized").payload["modules"]
    assert names.count("lesson.written") == names.count("assessment.ready") == len(modules)
    progress = [e.payload for e in events if e.name == "course.progress"]
    assert [p["done"] for p in progress] == list(range(1, 2 * len(modules) + 1))
    assert events[-1].payload["course_id"] == job.course_id
    ids = [e.message_id for e in events]
    assert len(ids) == len(set(ids))


async def test_unroutable_publish_raises(cluster: Cluster, infra: dict[str, str]) -> None:
    command = PlanCourse(
        job_id=str(uuid.uuid4()),
        correlation_id="cli-test",
        payload=PlanCoursePayload(course_id=str(uuid.uuid4()), topic="SQL"),
    )
    async with LecternBroker(infra["AMQP_URL"]) as lectern:
        with pytest.raises(Unroutable) as exc:
            await lectern.publish(command, routing_key="nobody.listens_here")
        assert exc.value.routing_key == "nobody.listens_here"
        assert exc.value.exchange == "lectern.commands"
        # the channel recovers: the same command to its real key is confirmed
        await lectern.publish(command)


async def test_invalid_command_is_refused_before_publishing(infra: dict[str, str]) -> None:
    async with LecternBroker(infra["AMQP_URL"]) as lectern:
        with pytest.raises(InvalidInput) as exc:
            await lectern.plan_course("S", duration_hours=-1)
    assert set(exc.value.fields) == {"topic", "duration_hours"}


async def test_a_failed_job_is_yielded_then_raised(cluster: Cluster, infra: dict[str, str]) -> None:
    job_id = str(uuid.uuid4())
    # a schema the planner does not know: dead-lettered at once, with a job.failed
    command = PlanCourse(
        job_id=job_id,
        correlation_id=job_id,
        schema="planner.plan_course.v9",
        payload=PlanCoursePayload(course_id=str(uuid.uuid4()), topic="SQL"),
    )
    seen: list[Event] = []
    async with LecternBroker(infra["AMQP_URL"]) as lectern:
        job = await lectern.watch(job_id=job_id, final_events=["course.ready", "job.failed"])
        await lectern.publish(command)
        with pytest.raises(JobFailed) as exc:
            async for event in lectern.events(job, idle_timeout=60):
                seen.append(event)
    assert [e.name for e in seen] == ["job.failed"]
    assert "planner.plan_course.v9" in exc.value.reason and exc.value.retryable is False


async def test_resume_after_a_disconnect_loses_and_repeats_nothing(
    cluster: Cluster, infra: dict[str, str]
) -> None:
    """Crash mid-course, let the course finish while away, resume: every event once."""
    job_id, correlation = str(uuid.uuid4()), f"cli-resume-{uuid.uuid4().hex[:8]}"
    # an independent observer of every event of the request, to compare with
    listening = asyncio.Event()
    observer = asyncio.create_task(
        collect_events(infra["AMQP_URL"], correlation, listening, timeout=180)
    )
    await listening.wait()

    first = await LecternBroker(infra["AMQP_URL"]).connect()
    job = await first.plan_course(
        "Python asyncio",
        duration_hours=6,
        auto_finalize=True,
        job_id=job_id,
        correlation_id=correlation,
    )
    saved = json.dumps(job.to_dict())  # what a client would persist
    before: list[Event] = []
    stream = first.events(job, idle_timeout=120)
    async for event in stream:
        before.append(event)  # "processed"
        if event.name == "lesson.written":
            break  # mid-course
    # the crash: the connection goes away with the last event delivered but not acked
    await first.close()
    await stream.aclose()
    assert before[-1].name == "lesson.written"

    # while this client is away the course finishes; its events wait in the job's queue
    everything = await observer
    assert everything[-1]["schema"] == "course.ready.v1"

    async with LecternBroker(infra["AMQP_URL"]) as second:
        resumed_job = JobHandle.from_dict(json.loads(saved))
        after = [
            e
            async for e in second.events(
                resumed_job, seen={before[-1].message_id or ""}, idle_timeout=60
            )
        ]
    assert after[-1].name == "course.ready"
    assert after[0].message_id != before[-1].message_id, "the unacked event is not repeated"
    received = [e.message_id for e in before + after]
    assert len(received) == len(set(received)), "no event twice"
    published = [
        e["message_id"] for e in everything if not e["schema"].startswith(("llm.", "prompt."))
    ]
    assert sorted(received) == sorted(published), "every event of the job, none lost"
    assert len([e for e in after if e.name == "lesson.written"]) >= 1


async def test_gateway_client_course_export_and_resume(cluster: Cluster) -> None:
    async with LecternHTTP(cluster.gateway) as lectern:
        token = await lectern.guest()
        assert token["is_guest"] is True and lectern.token == token["access_token"]
        accepted = await lectern.create_course(
            "Negotiation skills", duration_hours=4, auto_finalize=True
        )
        events = [e async for e in lectern.events(accepted["job_id"], idle_timeout=120)]
        assert events[-1].name == "course.ready"
        ids = [int(e.id or 0) for e in events]
        assert ids == list(range(1, len(events) + 1))
        # resuming from event k gives exactly the events after k
        k = len(events) // 2
        rest = [e async for e in lectern.events(accepted["job_id"], last_event_id=k)]
        assert [e.id for e in rest] == [e.id for e in events[k:]]
        assert [e.body for e in rest] == [e.body for e in events[k:]]

        courses = await lectern.courses()
        assert [c["course_id"] for c in courses] == [accepted["course_id"]]
        assert courses[0]["status"] == "ready"
        exported = await lectern.export(accepted["course_id"], "markdown")
        assert exported.filename.endswith(".md") and exported.media_type.startswith("text/markdown")
        assert courses[0]["title"] in exported.content.decode()
        assert (await lectern.job(accepted["job_id"]))["status"] == "completed"


async def test_gateway_client_errors_carry_the_server_message(cluster: Cluster) -> None:
    async with LecternHTTP(cluster.gateway, "not-a-token") as lectern:
        with pytest.raises(Unauthorized) as unauthorized:
            await lectern.courses()
        assert unauthorized.value.status == 401
        await lectern.guest()
        with pytest.raises(NotFound, match="no-such-course"):
            await lectern.course("no-such-course")
        with pytest.raises(InvalidInput) as invalid:
            await lectern.create_course("x", duration_hours=3)
        assert "topic" in invalid.value.fields
        with pytest.raises(InvalidInput) as unknown:
            await lectern.create_course("SQL", colour="blue")
        assert "colour" in unknown.value.fields
        with pytest.raises(Forbidden, match="admin"):
            await lectern.prompts()


def test_pika_example_runs_a_course_to_ready(cluster: Cluster, infra: dict[str, str]) -> None:
    """examples/pika_plan_course.py: plain pika, no Lectern imports."""
    example = ROOT / "examples" / "pika_plan_course.py"
    assert "import shared" not in example.read_text() and "lectern_cli" not in example.read_text()
    result = subprocess.run(
        [
            sys.executable,
            str(example),
            "--amqp",
            infra["AMQP_URL"],
            "--hours",
            "4",
            "--idle-timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd="/",  # nothing of the checkout on its path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("published plan_course: job ")
    assert lines[-1].startswith("course.ready: course ")
    assert any(line.startswith("lesson.written: lesson 1") for line in lines)
    assert any(line.startswith("course.progress: 6/6") for line in lines)


def test_readme_broker_example_runs(cluster: Cluster, infra: dict[str, str]) -> None:
    """The README's example, as written, runs a course to course.ready."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Broker contract (for internal systems)", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "from shared.client.broker import LecternBroker" in code
    code = code.replace("amqp://guest:guest@127.0.0.1:5672/", infra["AMQP_URL"])
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("ready: ")
    steps = [line for line in lines if "/" in line]
    assert steps and steps[-1].split("/")[0] == steps[-1].split("/")[1]
