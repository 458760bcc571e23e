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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.gateway.auth import Principal
from services.gateway.store import budgets, metadata
from shared.budgets import account_key, period_of
from shared.contracts.base import Message
from shared.contracts.budgets import BudgetExhausted, BudgetExhaustedPayload
from shared.db import autocommit
from shared.ids import derived_id
from shared.metrics import BUDGET_ACCOUNTS, BUDGET_REJECTIONS, TOKENS_CHARGED
from shared.outbox import enqueue
from shared.settings import LecternSettings

log = logging.getLogger(__name__)


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


def _next_period_start(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def account_of(who: Principal) -> Account:
    """The account a caller's work is charged to."""
    key = account_key(who.tenant_id, who.user_id) or f"user:{who.user_id}"
    if key.startswith("tenant:"):
        return Account(key, "tenant")
    return Account(key, "guest" if who.is_guest else "user")


def _account_of_event(body: dict[str, Any]) -> Account | None:
    key = account_key(body.get("tenant_id"), body.get("user_id"))
    if key is None:
        return None  # system work (warm-up): nobody's budget
    return Account(key, "tenant" if key.startswith("tenant:") else "user")


def limit_for(settings: LecternSettings, kind: str) -> int | None:
    """The monthly token limit of an account kind; None when unlimited."""
    limit = {
        "guest": settings.budget_guest_tokens,
        "user": settings.budget_user_tokens,
        "tenant": settings.budget_tenant_tokens,
    }.get(kind, settings.budget_user_tokens)
    return limit or None


# Built once, run with the row as parameters (params: account, period, kind, tokens_used).
_new_budget = insert(budgets)
_CHARGE = _new_budget.on_conflict_do_update(
    index_elements=[budgets.c.account, budgets.c.period],
    set_={
        "tokens_used": budgets.c.tokens_used + _new_budget.excluded.tokens_used,
        "updated_at": func.now(),
    },
).returning(budgets.c.tokens_used, budgets.c.kind)
_OPEN_BUDGET = _new_budget.on_conflict_do_update(
    index_elements=[budgets.c.account, budgets.c.period],
    set_={"kind": _new_budget.excluded.kind},  # a guest who registered becomes a user
).returning(budgets.c.tokens_used)


async def charge(session: Any, body: dict[str, Any], settings: LecternSettings) -> bool:
    """Charge an ``llm.call_completed`` event's tokens to its account (in ``session``'s
    transaction; the caller makes sure each event is charged once).

    When the charge spends the account's budget, ``budget.exhausted`` is put in the
    outbox in the same transaction; returns True then (the relay has work).
    """
    account = _account_of_event(body)
    payload = body.get("payload") or {}
    try:
        tokens = int(payload.get("input_tokens") or 0) + int(payload.get("output_tokens") or 0)
    except (TypeError, ValueError):
        return False
    if account is None or tokens <= 0:
        return False
    period = period_of()
    row = (
        await session.execute(
            _CHARGE,
            {"account": account.key, "period": period, "kind": account.kind, "tokens_used": tokens},
        )
    ).one()
    TOKENS_CHARGED.labels(row.kind).inc(tokens)
    limit = limit_for(settings, row.kind)
    used = int(row.tokens_used)
    if limit is None or not (used - tokens < limit <= used):
        return False
    origin = Message.model_validate(body)
    await enqueue(
        session,
        metadata,
        origin.follow(
            BudgetExhausted,
            BudgetExhaustedPayload(
                account=account.key, period=period, limit_tokens=limit, used_tokens=used
            ),
            message_id=derived_id(account.key, period, str(limit), "budget-exhausted"),
        ),
    )
    return True


async def spent_accounts(sessionmaker: Any, settings: LecternSettings) -> list[dict[str, str]]:
    """The accounts whose budget is spent this month (asked by services as they start)."""
    limit = _limit_column(settings)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(budgets.c.account, budgets.c.period).where(
                budgets.c.period == period_of(), limit > 0, budgets.c.tokens_used >= limit
            )
        )
        return [{"account": r.account, "period": r.period} for r in rows]


def _limit_column(settings: LecternSettings) -> Any:
    return case(
        (budgets.c.kind == "guest", settings.budget_guest_tokens),
        (budgets.c.kind == "tenant", settings.budget_tenant_tokens),
        else_=settings.budget_user_tokens,
    )


async def budget_of(sessionmaker: Any, settings: LecternSettings, who: Principal) -> Budget:
    """The caller's budget this month (a row is made for it, with its current kind).

    One statement, in autocommit (no BEGIN and COMMIT around it)."""
    async with autocommit(sessionmaker).connect() as conn:
        return await budget_in(conn, settings, who)


async def budget_in(
    session: AsyncSession | AsyncConnection, settings: LecternSettings, who: Principal
) -> Budget:
    """:func:`budget_of` in the caller's transaction or connection."""
    account, now = account_of(who), datetime.now(UTC)
    period = period_of(now)
    used = (
        await session.execute(
            _OPEN_BUDGET,
            {"account": account.key, "period": period, "kind": account.kind, "tokens_used": 0},
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
    async with autocommit(sessionmaker).connect() as conn:
        return await require_budget_in(conn, settings, who)


async def require_budget_in(
    session: AsyncSession | AsyncConnection, settings: LecternSettings, who: Principal
) -> Budget:
    """:func:`require_budget` in the caller's transaction or connection."""
    budget = await budget_in(session, settings, who)
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
    limit = _limit_column(settings)
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
