"""What each prompt version costs and how well it does, from the execution log.

Quality has two sources: an automatic score per call where the output has a schema
(1: valid first time, 0.5: valid after a repair, 0: invalid) and users' ratings
(1 to 5) of what a job or a lesson produced. An experiment's arms are compared with
a two-proportion z-test (error rate) and Welch's t-test (quality, rating), so a
difference comes with how likely it is to be chance.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select

from services.prompts.store import executions, experiments, feedback
from shared.rpc import not_found

MIN_ARM_CALLS = 30  # below this an arm's figures are reported but called inconclusive

_quality = case(
    (executions.c.quality["schema_valid"].as_boolean().is_(None), literal(None)),
    (
        executions.c.quality["schema_valid"].as_boolean(),
        case((executions.c.quality["repaired"].as_boolean(), 0.5), else_=1.0),
    ),
    else_=0.0,
)
_error = case((executions.c.status == "ok", 0.0), else_=1.0)

# a rating applies to every call of the job rated, or of the course step rated
_rated = or_(
    and_(feedback.c.job_id.is_not(None), feedback.c.job_id == executions.c.job_id),
    and_(
        feedback.c.step.is_not(None),
        feedback.c.course_id == executions.c.course_id,
        feedback.c.step == executions.c.step,
    ),
)


def _stats_columns() -> list[Any]:
    return [
        func.count().label("calls"),
        func.avg(_error).label("error_rate"),
        func.percentile_cont(0.5).within_group(executions.c.latency_ms).label("p50_latency_ms"),
        func.percentile_cont(0.95).within_group(executions.c.latency_ms).label("p95_latency_ms"),
        func.avg(executions.c.input_tokens).label("mean_input_tokens"),
        func.avg(executions.c.output_tokens).label("mean_output_tokens"),
        func.avg(executions.c.cost_usd).label("mean_cost_usd"),
        func.sum(executions.c.cost_usd).label("total_cost_usd"),
        func.avg(_quality).label("mean_quality"),
        func.count(_quality).label("quality_n"),
        func.coalesce(func.var_samp(_quality), 0).label("quality_var"),
    ]


def _ratings(group: list[Any], where: Any) -> Any:
    """Mean rating, count and variance per group, one row per (rating, group) pair counted once."""
    rated = (
        select(*group, feedback.c.id, feedback.c.rating)
        .select_from(executions.join(feedback, _rated))
        .where(where)
        .distinct()
        .subquery()
    )
    keys = [rated.c[c.key] for c in group]
    return select(
        *keys,
        func.avg(cast(rated.c.rating, Float)).label("mean_rating"),
        func.count().label("ratings"),
        func.coalesce(func.var_samp(rated.c.rating), 0).label("rating_var"),
    ).group_by(*keys)


def _num(value: Any, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


async def version_stats(sessionmaker: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Per template version and model: calls, errors, latency, tokens, cost, quality, ratings."""
    group = [executions.c.prompt_name, executions.c.prompt_version, executions.c.model]
    where = executions.c.prompt_name == name if name else literal(True)
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(*group, *_stats_columns()).where(where).group_by(*group))
        ).all()
        ratings = {
            (r.prompt_name, r.prompt_version, r.model): r
            for r in (await session.execute(_ratings(group, where))).all()
        }
    out = []
    for r in rows:
        rated = ratings.get((r.prompt_name, r.prompt_version, r.model))
        out.append(
            {
                "prompt_name": r.prompt_name,
                "prompt_version": r.prompt_version,
                "model": r.model,
                "calls": r.calls,
                "error_rate": _num(r.error_rate),
                "p50_latency_ms": _num(r.p50_latency_ms, 1),
                "p95_latency_ms": _num(r.p95_latency_ms, 1),
                "mean_input_tokens": _num(r.mean_input_tokens, 1),
                "mean_output_tokens": _num(r.mean_output_tokens, 1),
                "mean_cost_usd": _num(r.mean_cost_usd, 6),
                "total_cost_usd": _num(r.total_cost_usd, 6),
                "mean_quality": _num(r.mean_quality),
                "mean_rating": _num(rated.mean_rating) if rated else None,
                "ratings": rated.ratings if rated else 0,
            }
        )
    out.sort(key=lambda s: (s["prompt_name"], _version_key(s["prompt_version"]), s["model"]))
    return out


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (10**9, version)


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def two_proportions(p1: float, n1: int, p2: float, n2: int) -> float | None:
    """Two-sided p-value that two rates differ (pooled z-test); None without data."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if p1 == p2 else 0.0
    return 2 * (1 - _phi(abs(p1 - p2) / se))


def welch(m1: float, v1: float, n1: int, m2: float, v2: float, n2: int) -> float | None:
    """Two-sided p-value that two means differ (Welch, normal approximation)."""
    if n1 < 2 or n2 < 2:
        return None
    se = math.sqrt(v1 / n1 + v2 / n2)
    if se == 0:
        return 1.0 if m1 == m2 else 0.0
    return 2 * (1 - _phi(abs(m1 - m2) / se))


def _compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    tests = {
        "error_rate": two_proportions(a["error_rate"], a["calls"], b["error_rate"], b["calls"]),
        "quality": welch(
            a["mean_quality"] or 0,
            a["quality_var"],
            a["quality_n"],
            b["mean_quality"] or 0,
            b["quality_var"],
            b["quality_n"],
        )
        if a["quality_n"] and b["quality_n"]
        else None,
        "rating": welch(
            a["mean_rating"] or 0,
            a["rating_var"],
            a["ratings"],
            b["mean_rating"] or 0,
            b["rating_var"],
            b["ratings"],
        )
        if a["ratings"] and b["ratings"]
        else None,
    }
    enough = min(a["calls"], b["calls"]) >= MIN_ARM_CALLS
    return {
        "versions": [a["version"], b["version"]],
        "p_values": {k: _num(v) for k, v in tests.items()},
        "significant": {k: (v is not None and v < 0.05 and enough) for k, v in tests.items()},
        "enough_data": enough,
    }


async def experiment_report(sessionmaker: Any, experiment_id: str) -> dict[str, Any]:
    """An experiment's arms side by side, with counts and significance of the differences."""
    async with sessionmaker() as session:
        exp = (
            await session.execute(
                select(experiments).where(experiments.c.experiment_id == experiment_id)
            )
        ).first()
        if exp is None:
            raise not_found(f"experiment {experiment_id}")
        group = [executions.c.prompt_version]
        where = executions.c.experiment_id == experiment_id
        rows = {
            r.prompt_version: r
            for r in (
                await session.execute(
                    select(*group, *_stats_columns()).where(where).group_by(*group)
                )
            ).all()
        }
        ratings = {
            r.prompt_version: r for r in (await session.execute(_ratings(group, where))).all()
        }
    arms = []
    for arm in exp.arms:
        key = str(arm["version"])
        r, rated = rows.get(key), ratings.get(key)
        arms.append(
            {
                "version": arm["version"],
                "weight": arm["weight"],
                "calls": r.calls if r else 0,
                "error_rate": _num(r.error_rate) if r else 0.0,
                "p50_latency_ms": _num(r.p50_latency_ms, 1) if r else None,
                "mean_output_tokens": _num(r.mean_output_tokens, 1) if r else None,
                "mean_cost_usd": _num(r.mean_cost_usd, 6) if r else None,
                "mean_quality": _num(r.mean_quality) if r else None,
                "quality_n": r.quality_n if r else 0,
                "quality_var": float(r.quality_var) if r else 0.0,
                "mean_rating": _num(rated.mean_rating) if rated else None,
                "ratings": rated.ratings if rated else 0,
                "rating_var": float(rated.rating_var) if rated else 0.0,
            }
        )
    comparisons = [
        _compare(arms[i], arms[j]) for i in range(len(arms)) for j in range(i + 1, len(arms))
    ]
    for arm in arms:
        arm.pop("quality_var")
        arm.pop("rating_var")
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "label": exp.label,
        "status": exp.status,
        "arms": arms,
        "comparisons": comparisons,
        "note": (
            f"p-values below 0.05 with at least {MIN_ARM_CALLS} calls per arm are marked "
            "significant; with fewer calls a difference may be chance."
        ),
    }
