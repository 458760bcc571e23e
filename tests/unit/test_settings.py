"""Settings: per-service defaults that LECTERN_* variables override."""

from __future__ import annotations

import pytest

from shared.settings import DEFAULT_PREFETCH, LecternSettings


def test_llm_bound_services_hold_a_thousand_messages_the_others_32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LECTERN_PREFETCH", raising=False)
    monkeypatch.delenv("PREFETCH", raising=False)
    assert LecternSettings(service_name="content").prefetch == 1000
    assert LecternSettings(service_name="assessment").prefetch == 1000
    assert LecternSettings(service_name="planner").prefetch == DEFAULT_PREFETCH == 32
    assert LecternSettings(service_name="gateway").prefetch == 32
    monkeypatch.setenv("LECTERN_PREFETCH", "64")  # an operator's choice wins
    assert LecternSettings(service_name="content").prefetch == 64
    assert LecternSettings(service_name="planner").prefetch == 64
