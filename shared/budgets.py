"""Token budget accounts, and the guard that stops LLM calls for a spent one.

The gateway is the budget authority: it charges every ``llm.call_completed`` to an
account and refuses new work for a spent one. Work already under way is stopped by
the :class:`BudgetGuard` each service holds: the gateway announces
``budget.exhausted`` when an account crosses its limit, every process records it,
and an LLM call made for that account's work raises :class:`BudgetSpent` (a
permanent error: the message is dead-lettered and its job gets ``job.failed``).
A process that starts later asks the gateway which accounts are spent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from shared.messaging import PermanentError

log = logging.getLogger("lectern.budgets")
DEFAULT_TENANT = "default"


def account_key(tenant_id: str | None, user_id: str | None) -> str | None:
    """The account work is charged to: a named tenant, else the user; None for system
    work (warm-up, no user)."""
    tenant = tenant_id or DEFAULT_TENANT
    if tenant != DEFAULT_TENANT:
        return f"tenant:{tenant}"[:220]
    if user_id:
        return f"user:{user_id}"[:220]
    return None


def period_of(now: datetime | None = None) -> str:
    """The budget period (calendar month, UTC) ``now`` falls in."""
    return (now or datetime.now(UTC)).strftime("%Y-%m")


class BudgetSpent(PermanentError):
    """The work's account has no tokens left this month."""


class BudgetGuard:
    """The accounts whose budget is spent this month, as announced by the gateway."""

    def __init__(self) -> None:
        self._spent: dict[str, str] = {}  # account -> period

    def mark_spent(self, account: str, period: str) -> None:
        """Record that ``account`` spent its budget for ``period``."""
        self._spent[account] = period

    def is_spent(self, account: str | None) -> bool:
        """Whether ``account`` has spent this month's budget."""
        return account is not None and self._spent.get(account) == period_of()

    def check(self, message: Any) -> None:
        """Raise :class:`BudgetSpent` when ``message``'s work belongs to a spent account."""
        if message is None:
            return
        account = account_key(
            getattr(message, "tenant_id", None), getattr(message, "user_id", None)
        )
        if self.is_spent(account):
            raise BudgetSpent(
                f"token budget spent: {account} has used this month's token budget, so no "
                "further LLM call is made for this work; it renews on the 1st (UTC)"
            )
