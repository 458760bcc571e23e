"""Token budgets: who pays for an LLM call, how much is left, and refusing work when none is.

An *account* is a named tenant (``tenant:acme``, shared by its users and by internal
systems publishing with that tenant id) or, in the default tenant, one user
(``user:<id>``: a guest or a registered learner). Each has a budget of LLM tokens
per calendar month (UTC) set by ``LECTERN_BUDGET_{GUEST,USER,TENANT}_TOKENS``.

Usage is charged from the ``llm.call_completed`` events the event log stores, in
the same transaction and once per event (the log dedups by message id), so a
redelivered event is never billed twice. A request is refused before any work
starts when its account has nothing left; work already running finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert

from services.gateway.auth import Principal
from services.gateway.store import budgets
from shared.metrics import BUDGET_ACCOUNTS, BUDGET_REJECTIONS, TOKENS_CHARGED
from shared.settings import LecternSettings

log = logging.getLogger(__name__)
DEFAULT_TENANT = "default"


class Budget(BaseModel):
    """The caller's LLM token budget this month."""

    account: str = Field(description="What the budget belongs to: a tenant or one user.")
    kind: str = Field(description="guest, user or tenant: which limit applies.")
    period: str = Field(description="The calendar month (UTC) it counts, YYYY-MM.")
    limit_tokens: int | None = Field(description="Tokens allowed this month; null = unlimited.")
    used_tokens: int = Field(description="Tokens used this month.")
    remaining_tokens: int | None = Field(description="Tokens left; null = unlimited.")
    resets_at: datetime = Field(description="When the next month's budget starts (UTC).")


@dataclass(frozen=True)
class Account:
    key: str
    kind: str


def period_of(now: datetime | None = None) -> str:
    """The budget period (calendar month, UTC) ``now`` falls in."""
    return (now or datetime.now(UTC)).strftime("%Y-%m")


def _next_period_start(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def account_of(who: Principal) -> Account:
    """The account a caller's work is charged to."""
    if who.tenant_id != DEFAULT_TENANT:
        return Account(f"tenant:{who.tenant_id}", "tenant")
    return Account(f"user:{who.user_id}", "guest" if who.is_guest else "user")


def _account_of_event(body: dict[str, Any]) -> Account | None:
    tenant, user = body.get("tenant_id") or DEFAULT_TENANT, body.get("user_id")
    if tenant != DEFAULT_TENANT:
        return Account(f"tenant:{tenant}"[:220], "tenant")
    if user:
        return Account(f"user:{user}"[:220], "user")
    return None  # system work (warm-up): nobody's budget


def limit_for(settings: LecternSettings, kind: str) -> int | None:
    """The monthly token limit of an account kind; None when unlimited."""
    limit = {
        "guest": settings.budget_guest_tokens,
        "user": settings.budget_user_tokens,
        "tenant": settings.budget_tenant_tokens,
    }.get(kind, settings.budget_user_tokens)
    return limit or None


async def charge(session: Any, body: dict[str, Any]) -> None:
    """Charge an ``llm.call_completed`` event's tokens to its account (in ``session``'s
    transaction; the caller makes sure each event is charged once)."""
    account = _account_of_event(body)
    payload = body.get("payload") or {}
    try:
        tokens = int(payload.get("input_tokens") or 0) + int(payload.get("output_tokens") or 0)
    except (TypeError, ValueError):
        return
    if account is None or tokens <= 0:
        return
    stmt = insert(budgets).values(
        account=account.key, period=period_of(), kind=account.kind, tokens_used=tokens
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[budgets.c.account, budgets.c.period],
            set_={"tokens_used": budgets.c.tokens_used + tokens, "updated_at": func.now()},
        )
    )
    TOKENS_CHARGED.labels(account.kind).inc(tokens)


async def budget_of(sessionmaker: Any, settings: LecternSettings, who: Principal) -> Budget:
    """The caller's budget this month (a row is made for it, with its current kind)."""
    account, now = account_of(who), datetime.now(UTC)
    period = period_of(now)
    async with sessionmaker() as session, session.begin():
        stmt = insert(budgets).values(
            account=account.key, period=period, kind=account.kind, tokens_used=0
        )
        used = (
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[budgets.c.account, budgets.c.period],
                    set_={"kind": account.kind},  # a guest who registered becomes a user
                ).returning(budgets.c.tokens_used)
            )
        ).scalar_one()
    limit = limit_for(settings, account.kind)
    return Budget(
        account=account.key if account.kind == "tenant" else "you",
        kind=account.kind,
        period=period,
        limit_tokens=limit,
        used_tokens=int(used),
        remaining_tokens=None if limit is None else max(0, limit - int(used)),
        resets_at=_next_period_start(now),
    )


async def require_budget(sessionmaker: Any, settings: LecternSettings, who: Principal) -> Budget:
    """The caller's budget; 402 naming the budget when none is left."""
    budget = await budget_of(sessionmaker, settings, who)
    if budget.remaining_tokens is not None and budget.remaining_tokens <= 0:
        BUDGET_REJECTIONS.labels(budget.kind).inc()
        whose = "your tenant's" if budget.kind == "tenant" else f"your {budget.kind}"
        hint = " Register an account for a larger budget." if budget.kind == "guest" else ""
        raise HTTPException(
            status.HTTP_402_PAYMENT_REQUIRED,
            detail=(
                f"token budget spent: {whose} budget of {budget.limit_tokens:,} tokens for "
                f"{budget.period} is used ({budget.used_tokens:,} tokens); it renews on "
                f"{budget.resets_at:%Y-%m-%d}.{hint}"
            ),
        )
    return budget


async def refresh_budget_gauge(sessionmaker: Any, settings: LecternSettings) -> None:
    """Set ``lectern_budget_accounts{band}`` from this month's usage."""
    limit = case(
        (budgets.c.kind == "guest", settings.budget_guest_tokens),
        (budgets.c.kind == "tenant", settings.budget_tenant_tokens),
        else_=settings.budget_user_tokens,
    )
    band = case(
        (limit == 0, "below_80"),
        (budgets.c.tokens_used >= limit, "spent"),
        (budgets.c.tokens_used * 5 >= limit * 4, "80_to_100"),
        else_="below_80",
    )
    async with sessionmaker() as session:
        rows = await session.execute(
            select(band.label("band"), func.count())
            .where(budgets.c.period == period_of(), budgets.c.tokens_used > 0)
            .group_by("band")
        )
        counts = {str(r[0]): int(r[1]) for r in rows}
    for name in ("below_80", "80_to_100", "spent"):
        BUDGET_ACCOUNTS.labels(name).set(counts.get(name, 0))


async def keep_budget_gauge(sessionmaker: Any, settings: LecternSettings, every: float) -> None:
    """Refresh the budget gauge every ``every`` seconds until cancelled."""
    while True:
        with contextlib.suppress(Exception):  # a database hiccup skips one refresh
            await refresh_budget_gauge(sessionmaker, settings)
        await asyncio.sleep(every)
