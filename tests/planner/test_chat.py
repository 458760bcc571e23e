"""The refinement prompt stays bounded however long the chat grows."""

from __future__ import annotations

from services.planner import chat, prompts
from services.planner.finalise import CourseDraft, module_specs
from shared.contracts.planner import LearnerProfile
from shared.llm.library import LIBRARY

PROFILE = LearnerProfile(topic="Statistics")


def turns(n: int) -> list[chat.Turn]:
    out = [chat.Turn(1, "assistant", "plan 1")]
    for seq in range(2, n + 1):
        role = "user" if seq % 2 == 0 else "assistant"
        out.append(chat.Turn(seq, role, f"{'request' if role == 'user' else 'plan'} {seq}"))
    return out


def test_short_chat_goes_verbatim() -> None:
    history = chat.plan_history(turns(5), None)
    assert history.summary is None and not history.to_summarise
    assert [t.seq for t in history.recent] == [1, 2, 3, 4, 5]


def test_long_chat_summarises_older_turns_and_keeps_the_latest_plan() -> None:
    all_turns = turns(41)
    history = chat.plan_history(all_turns, None)
    assert [t.seq for t in history.to_summarise] == list(range(1, 38))
    assert [t.seq for t in history.recent] == [38, 39, 40, 41]
    assert history.recent[-1].content == "plan 41"  # the latest plan, verbatim


def test_summary_is_reused_until_enough_new_turns() -> None:
    all_turns = turns(41)
    summary = chat.Summary(covers=37, text="so far")
    for n in range(41, 41 + chat.SUMMARY_STEP):
        history = chat.plan_history(turns(n), summary)
        assert not history.to_summarise, n
        assert len(history.recent) < chat.KEEP_VERBATIM + chat.SUMMARY_STEP
    history = chat.plan_history(turns(41 + chat.SUMMARY_STEP), summary)
    assert history.to_summarise and history.to_summarise[0].seq == 38
    assert len(all_turns) == 41


def test_prompt_size_does_not_grow_with_the_chat() -> None:
    sizes = []
    summary: chat.Summary | None = None
    for n in range(1, 200, 2):
        history = chat.plan_history(turns(n), summary)
        if history.to_summarise:
            summary = chat.Summary(covers=history.to_summarise[-1].seq, text="summary")
        variables = prompts.refine_variables(
            PROFILE,
            summary.text if summary else None,
            [t.as_message() for t in history.recent],
            "next",
        )
        messages = LIBRARY[prompts.REFINE_PLAN].render(variables)
        sizes.append(len(messages))
    assert max(sizes) <= 3 + chat.KEEP_VERBATIM + chat.SUMMARY_STEP
    assert max(sizes[-20:]) == max(sizes)  # bounded, not growing


def test_module_specs_are_ordered_and_numbered_from_one() -> None:
    draft = CourseDraft.model_validate(
        {
            "modules": [
                {
                    "order": order,
                    "title": f"M{order}",
                    "description": "d",
                    "learning_objectives": ["x"],
                    "estimated_hours": 1,
                }
                for order in (5, 2, 9)
            ]
        }
    )
    specs = module_specs("c-1", draft)
    assert [(s.order, s.title) for s in specs] == [(1, "M2"), (2, "M5"), (3, "M9")]
    assert len({s.module_id for s in specs}) == 3
    assert module_specs("c-1", draft)[0].module_id == specs[0].module_id  # stable
