"""The chaos run, moderate size (``make chaos`` runs a bigger one): autopilot courses at
once while workers are killed (-9) and replaced every few seconds, RabbitMQ restarts
once and PostgreSQL once, and the LLM answers with 429s, 5xx, timeouts, cut streams and
broken JSON. Nothing may be lost, duplicated, unexpected or billed twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.run import ChaosConfig, run_chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]


def test_chaos(tmp_path: Path) -> None:
    findings = run_chaos(ChaosConfig(courses=12, seconds=60, settle=100), tmp_path / "chaos")
    print(findings.table())  # shown with -s, and in the failure report
    table = findings.table()
    # the chaos did happen
    assert findings.kills >= 6 and findings.rabbit_restarts == findings.postgres_restarts == 1
    faults = sum(n for outcome, n in findings.llm_outcomes.items() if outcome != "ok")
    assert faults >= 5, findings.llm_outcomes
    # and hurt nothing
    assert findings.headline() == dict.fromkeys(findings.headline(), 0), table
    assert findings.ready + findings.failed == findings.courses, table
    assert findings.detached_queues == [], table
