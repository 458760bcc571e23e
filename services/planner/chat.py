"""The planning chat: stored turns, and a prompt that stays bounded as the chat grows.

Older turns are folded into a rolling summary; the latest turns (the latest plan
among them) go to the LLM verbatim. The summary is stored and reused, and only
redone when ``SUMMARY_STEP`` more turns have left the verbatim window, so a long
chat costs one small summarisation call every few turns, not one per turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.planner.store import chat_messages

KEEP_VERBATIM = 4  # the last two exchanges: the latest plan and the request before it
SUMMARY_STEP = 4  # re-summarise once this many more turns left the verbatim window
CHAT_KINDS = ("welcome", "request", "plan")


@dataclass(frozen=True)
class Turn:
    seq: int
    role: str
    content: str

    def as_message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Summary:
    covers: int  # the summary stands for every turn with seq <= covers
    text: str


@dataclass(frozen=True)
class PromptHistory:
    """What a refinement prompt holds of the chat, and what to summarise first."""

    summary: Summary | None
    recent: list[Turn]
    to_summarise: list[Turn]  # empty when the stored summary is recent enough


def plan_history(turns: list[Turn], summary: Summary | None) -> PromptHistory:
    """Split the chat into summary, turns to fold into it, and verbatim turns."""
    covered = summary.covers if summary else 0
    uncovered = [t for t in turns if t.seq > covered]
    if len(uncovered) < KEEP_VERBATIM + SUMMARY_STEP:
        return PromptHistory(summary=summary, recent=uncovered, to_summarise=[])
    return PromptHistory(
        summary=summary, recent=uncovered[-KEEP_VERBATIM:], to_summarise=uncovered[:-KEEP_VERBATIM]
    )


def latest_plan(turns: list[Turn]) -> str | None:
    """The newest plan the assistant proposed."""
    for turn in reversed(turns):
        if turn.role == "assistant":
            return turn.content
    return None


async def load_turns(session: AsyncSession, course_id: str) -> list[Turn]:
    """The chat's turns in order (summaries excluded)."""
    rows = await session.execute(
        select(chat_messages.c.seq, chat_messages.c.role, chat_messages.c.content)
        .where(chat_messages.c.course_id == course_id, chat_messages.c.kind.in_(CHAT_KINDS))
        .order_by(chat_messages.c.seq)
    )
    return [Turn(seq=r.seq, role=r.role, content=r.content) for r in rows]


async def load_summary(session: AsyncSession, course_id: str) -> Summary | None:
    """The most recent stored summary of the chat, if any."""
    row = (
        await session.execute(
            select(chat_messages.c.covers, chat_messages.c.content)
            .where(chat_messages.c.course_id == course_id, chat_messages.c.kind == "summary")
            .order_by(chat_messages.c.covers.desc())
            .limit(1)
        )
    ).first()
    return Summary(covers=row.covers, text=row.content) if row else None


async def next_seq(session: AsyncSession, course_id: str) -> int:
    """The sequence number of the next turn (call with the course row locked)."""
    current = await session.scalar(
        select(func.coalesce(func.max(chat_messages.c.seq), 0)).where(
            chat_messages.c.course_id == course_id, chat_messages.c.kind.in_(CHAT_KINDS)
        )
    )
    return int(current or 0) + 1


async def store_summary(
    session: AsyncSession, course_id: str, summary_id: str, covers: int, result: Any
) -> None:
    """Keep a summary (idempotent: a redelivery computes the same id)."""
    await session.execute(
        insert(chat_messages)
        .values(
            id=summary_id,
            course_id=course_id,
            role="system",
            kind="summary",
            content=result.text,
            covers=covers,
            seq=covers,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            latency_ms=int(result.latency_ms),
        )
        .on_conflict_do_nothing()
    )
