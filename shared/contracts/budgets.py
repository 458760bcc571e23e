"""Events of token budgets (producer: gateway, which charges every LLM call)."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import Message, Payload


class BudgetExhaustedPayload(Payload):
    account: str = Field(
        description="The account whose budget is spent: tenant:<id> or user:<id>.",
        examples=["tenant:acme"],
        max_length=220,
    )
    period: str = Field(description="The month (UTC) it is spent for.", examples=["2026-11"])
    limit_tokens: int = Field(description="The account's monthly limit.", examples=[300000])
    used_tokens: int = Field(description="Tokens used when it crossed.", examples=[300412])


class BudgetExhausted(Message):
    """An account used up its monthly token budget: services make no further LLM call
    for its work this month (work in flight ends with job.failed naming the budget)."""

    SCHEMA = "budget.exhausted.v1"
    payload: BudgetExhaustedPayload
