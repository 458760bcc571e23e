"""Chaos tests run on their own RabbitMQ node and PostgreSQL cluster (tests.support.
private_infra), so restarting them disturbs nobody: not the shared test vhost, not a
running ``make run``, not another session's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import Stage, build_stage

ONE_EACH = {"gateway": 1, "planner": 1, "content": 1, "assessment": 1, "prompts": 1}


@pytest.fixture
def stage_of(tmp_path: Path) -> Iterator[Callable[..., Stage]]:
    """Build a stage (private infra, fault LLM server, services started); torn down after."""
    built: list[Stage] = []

    def build(replicas: dict[str, int] | None = None, llm_args: list[str] | None = None) -> Stage:
        stage = build_stage(tmp_path / f"stage-{len(built)}", llm_args or [])
        built.append(stage)
        stage.add_replicas(replicas or ONE_EACH)
        stage.start_all()
        return stage

    yield build
    for stage in built:
        stage.close()
