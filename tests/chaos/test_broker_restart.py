"""A broker restart: every service says it is not ready, naming the consumers it lost,
until they are attached again; then the broker's own view agrees and a course runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.chaos import checks
from tests.chaos.clients import Gateways, HttpTally, run_course
from tests.chaos.harness import Stage, readyz

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]

# a queue each service consumes, that its /readyz must name while detached
OWN_QUEUE = {
    "gateway": "gateway.event-log",
    "planner": "planner.commands",
    "content": "content.commands",
    "assessment": "assessment.on-lesson-written",
    "prompts": "prompts.commands",
}


def durable_consumed(stage: Stage) -> set[str]:
    """Durable queues with a consumer now (per-process queues have two dots)."""
    return {q for q in stage.rabbit.consumers() if q.count(".") == 1}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.5)


def test_consumers_come_back_after_a_broker_restart(stage_of: Callable[..., Stage]) -> None:
    stage = stage_of()
    consumed = durable_consumed(stage)
    assert set(OWN_QUEUE.values()) <= consumed, consumed

    stage.rabbit.stop()
    for slot in stage.slots:
        queue = OWN_QUEUE[slot.name]

        def names_its_queue(url: str = slot.service.url, queue: str = queue) -> bool:
            status, body = readyz(url)
            return status == 503 and "consumers not attached" in body and queue in body

        wait_for(names_its_queue, 30, f"{slot.name}'s /readyz names {queue} as detached")
    # a worker (re)started while the broker is down waits for it instead of idling forever
    content = stage.of("content")[0]
    stage.replace(content)
    time.sleep(3)
    assert content.service.proc is not None and content.service.proc.poll() is None
    assert readyz(content.service.url)[0] != 200

    stage.rabbit.start()
    problems = stage.wait_all_ready(timeout=90)
    assert not problems, problems
    assert stage.exits == [], stage.exits  # nobody had to be restarted by hand
    # the broker agrees: every durable queue consumed before is consumed again
    wait_for(lambda: consumed <= durable_consumed(stage), 30, "consumers re-attached")

    tally = HttpTally()
    run = asyncio.run(
        run_course(0, "broker", Gateways(stage.gateways), tally, time.monotonic() + 120)
    )
    findings = checks.Findings()
    checks.judge_clients([run], tally, findings)
    assert run.final == "course.ready", findings.table()
    assert findings.headline() == dict.fromkeys(findings.headline(), 0), findings.table()
