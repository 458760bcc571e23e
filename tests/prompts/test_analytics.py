"""Analytics computed from the execution log match the log; experiments compare arms."""

from __future__ import annotations

import statistics
import uuid
from typing import Any

import pytest

from services.prompts import analytics, registry, service
from shared.contracts.llm import LLMCallCompleted, LLMCallCompletedPayload
from tests.prompts.conftest import template, unique

pytestmark = pytest.mark.integration


def call(name: str, version: str, *, latency: float, ok: bool = True, **extra: Any) -> Any:
    job = extra.pop("job_id", str(uuid.uuid4()))
    return LLMCallCompleted(
        job_id=job,
        correlation_id=job,
        payload=LLMCallCompletedPayload(
            service="content",
            task="write_lesson",
            prompt_name=name,
            prompt_version=version,
            model="offline/lectern",
            requested_model="offline/lectern",
            input_tokens=extra.pop("input_tokens", 100),
            output_tokens=extra.pop("output_tokens", 50),
            cost_usd=extra.pop("cost_usd", 0.001),
            latency_ms=latency,
            ttft_ms=10.0,
            status="ok" if ok else "error",
            error_kind=None if ok else "provider_error",
            attempts=1,
            fallback_used=False,
            **extra,
        ),
    )


async def test_version_stats_match_the_log(sm: Any) -> None:
    name = unique()
    latencies = [100.0, 200.0, 300.0, 400.0, 1000.0]
    quality = [
        {"schema_valid": True, "repaired": False},
        {"schema_valid": True, "repaired": True},
        {"schema_valid": False, "repaired": False},
        {},
        {"schema_valid": True, "repaired": False},
    ]
    job = str(uuid.uuid4())
    for index, (latency, q) in enumerate(zip(latencies, quality, strict=True)):
        event = call(
            name,
            "1",
            latency=latency,
            ok=index != 2,
            output_tokens=10 * (index + 1),
            quality=q,
            job_id=job if index == 0 else str(uuid.uuid4()),
            course_id="c-1",
            step="lesson:1" if index == 1 else None,
        )
        assert await service.log_execution(event, sm) is True
        assert await service.log_execution(event, sm) is False  # once per message_id
    await service.log_execution(call(name, "2", latency=50.0), sm)
    for rating, target in ((5, {"job_id": job}), (2, {"course_id": "c-1", "step": "lesson:1"})):
        await service.record_feedback(
            sm,
            service.FeedbackQuery(tenant_id="t", user_id="u", rating=rating, comment="", **target),
        )

    stats = {s["prompt_version"]: s for s in await analytics.version_stats(sm, name)}
    v1 = stats["1"]
    assert v1["calls"] == 5 and v1["error_rate"] == 0.2
    assert v1["p50_latency_ms"] == statistics.median(latencies)
    assert v1["p95_latency_ms"] == pytest.approx(880.0)  # linear interpolation, as PostgreSQL
    assert v1["mean_output_tokens"] == 30.0 and v1["total_cost_usd"] == pytest.approx(0.005)
    assert v1["mean_quality"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert v1["mean_rating"] == 3.5 and v1["ratings"] == 2
    assert stats["2"]["calls"] == 1 and stats["2"]["ratings"] == 0


async def test_an_experiment_report_compares_arms_with_counts(sm: Any) -> None:
    name = unique()
    await registry.seed(sm, {name: template(name)})
    await registry.create_version(
        sm,
        name,
        {
            **template(name, "Teach {topic}.").template().model_dump(mode="json"),
            "change_note": "shorter",
        },
        author="ana",
    )
    started = await registry.start_experiment(
        sm, name, "production", {"arms": [{"version": 1}, {"version": 2}]}, author="ana"
    )
    exp = started["experiment_id"]
    for i in range(40):
        await service.log_execution(call(name, "1", latency=100.0, experiment_id=exp), sm)
        await service.log_execution(
            call(name, "2", latency=80.0, ok=i % 2 == 0, experiment_id=exp), sm
        )
    report = await analytics.experiment_report(sm, exp)
    arms = {a["version"]: a for a in report["arms"]}
    assert arms[1]["calls"] == arms[2]["calls"] == 40
    assert arms[1]["error_rate"] == 0.0 and arms[2]["error_rate"] == 0.5
    [comparison] = report["comparisons"]
    assert comparison["enough_data"] is True
    assert comparison["p_values"]["error_rate"] < 0.001
    assert comparison["significant"]["error_rate"] is True


def test_significance_needs_a_real_difference() -> None:
    assert analytics.two_proportions(0.10, 1000, 0.11, 1000) > 0.05
    assert analytics.two_proportions(0.10, 1000, 0.20, 1000) < 0.001
    assert analytics.welch(4.0, 1.0, 5, 4.2, 1.0, 5) > 0.5
    assert analytics.two_proportions(0.1, 0, 0.2, 10) is None
