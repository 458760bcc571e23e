"""A PostgreSQL outage longer than the retry budget fails no job: work waits for the
database instead of spending its attempts and being dead-lettered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.chaos import checks
from tests.chaos.clients import Gateways, HttpTally, run_course
from tests.chaos.harness import Stage

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

DOWN_S = 8.0  # the retry budget with the defaults: 4 attempts, 0.5 + 1 + 2 s apart


def test_a_long_database_outage_fails_no_job(stage_of: Callable[..., Stage]) -> None:
    # lessons take ~3 s: they finish, and try to store, while the database is away
    stage = stage_of(llm_args=["--ttft", "0.2", "--latency", "3"])
    tally = HttpTally()

    async def scenario() -> checks.Findings:
        course = asyncio.create_task(
            run_course(0, "outage", Gateways(stage.gateways), tally, time.monotonic() + 150)
        )
        for _ in range(300):  # the modules are stored: the lessons are being written
            if any(r["task"] == "finalise_modules" and r["outcome"] == "ok"
                   for r in stage.llm.records()):  # fmt: skip
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(stage.postgres.restart, DOWN_S)
        run = await course
        findings = checks.Findings()
        checks.judge_clients([run], tally, findings)
        return findings

    findings = asyncio.run(scenario())
    assert findings.ready == 1 and findings.failed == 0, findings.table()
    assert findings.headline() == dict.fromkeys(findings.headline(), 0), findings.table()
