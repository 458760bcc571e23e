"""The prompt registry on the real PostgreSQL: versions, labels, seeding, experiments."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.prompts import registry
from shared.llm.registry import assign
from shared.rpc import RpcError
from tests.prompts.conftest import activations, template, unique

pytestmark = pytest.mark.integration


def _body(system: str, note: str = "clearer", **variables: str) -> dict[str, Any]:
    """A new-version body (not validated: the registry must do that)."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "{brief}"},
        ],
        "variables": {
            "topic": {"type": variables.get("topic", "string")},
            "brief": {"type": "string"},
        },
        "change_note": note,
    }


async def test_seeding_is_idempotent_and_follows_shipped_changes_only(sm: Any) -> None:
    name = unique()
    assert await registry.seed(sm, {name: template(name)}) == [name]
    assert await registry.seed(sm, {name: template(name)}) == []  # nothing new
    shown = await registry.get_template(sm, name)
    assert [v["version"] for v in shown["versions"]] == [1]
    assert shown["labels"] == {"production": 1, "staging": 1}

    # a new release changes the shipped default: the labels on shipped versions follow it
    await registry.seed(sm, {name: template(name, "You teach {topic} well.")})
    assert (await registry.get_template(sm, name))["labels"] == {"production": 2, "staging": 2}

    # a person points production at their own version: the next release leaves it there
    own = await registry.create_version(sm, name, _body("Teach {topic}!"), author="ana")
    await registry.move_label(sm, name, "production", own["version"], author="ana")
    await registry.seed(sm, {name: template(name, "You teach {topic} very well.")})
    labels = (await registry.get_template(sm, name))["labels"]
    assert labels == {"production": own["version"], "staging": 4}
    assert [a["version"] for a in await activations(sm, name)] == [1, 1, 2, 2, 3, 4]


async def test_versions_are_immutable_in_the_database(sm: Any) -> None:
    name = unique()
    await registry.seed(sm, {name: template(name)})
    for statement in (
        "UPDATE prompts.versions SET change_note = 'edited' WHERE name = :n",
        "DELETE FROM prompts.versions WHERE name = :n",
    ):
        with pytest.raises(DBAPIError, match="immutable"):
            async with sm() as session, session.begin():
                await session.execute(text(statement), {"n": name})
    version = await registry.get_version(sm, name, 1)
    assert version.change_note == "shipped default"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**_body("Hi {topic}"), "change_note": ""}, "change_note"),
        (_body("Hi {topc}"), "without a declared variable"),
        (_body("Hi {topic.__class__}"), "plain variable name"),
        (_body("Hi {topic}", topic="integer"), "topic must stay a string"),
    ],
)
async def test_bad_versions_are_refused_naming_the_problem(
    sm: Any, body: dict[str, Any], words: str
) -> None:
    name = unique()
    await registry.seed(sm, {name: template(name)})
    with pytest.raises(RpcError) as caught:
        await registry.create_version(sm, name, body, author="ana")
    assert caught.value.status == 422 and words in caught.value.detail


async def test_labels_move_and_roll_back_and_resolve(sm: Any) -> None:
    name = unique()
    await registry.seed(sm, {name: template(name)})
    v2 = await registry.create_version(sm, name, _body("Teach {topic} briefly."), author="ana")
    assert (await registry.resolve(sm, name, "production"))["version"] == 1  # saving moves nothing
    await registry.move_label(sm, name, "production", v2["version"], author="ana")
    resolved = await registry.resolve(sm, name, "production")
    assert resolved["version"] == 2
    assert "briefly" in resolved["versions"]["2"]["messages"][0]["content"]
    await registry.move_label(sm, name, "production", 1, author="ana")  # rollback
    assert (await registry.resolve(sm, name, "production"))["version"] == 1
    with pytest.raises(RpcError) as caught:
        await registry.move_label(sm, name, "production", 9, author="ana")
    assert caught.value.status == 404
    diff = await registry.diff(sm, name, 1, 2)
    assert "-You teach {topic}." in diff["diff"] and "+Teach {topic} briefly." in diff["diff"]


async def test_an_experiment_splits_a_label_until_stopped(sm: Any) -> None:
    name = unique()
    await registry.seed(sm, {name: template(name)})
    await registry.create_version(sm, name, _body("Teach {topic} briefly."), author="ana")
    started = await registry.start_experiment(
        sm,
        name,
        "production",
        {"arms": [{"version": 1, "weight": 3}, {"version": 2, "weight": 1}]},
        author="ana",
    )
    assert [a["weight"] for a in started["arms"]] == [0.75, 0.25]
    resolved = await registry.resolve(sm, name, "production")
    assert resolved["experiment_id"] == started["experiment_id"]
    assert set(resolved["versions"]) == {"1", "2"}
    with pytest.raises(RpcError) as caught:
        await registry.start_experiment(
            sm, name, "production", {"arms": [{"version": 1}, {"version": 2}]}, author="ana"
        )
    assert caught.value.status == 409
    stopped = await registry.stop_experiment(sm, started["experiment_id"], author="ana", promote=2)
    assert stopped["status"] == "stopped"
    assert (await registry.resolve(sm, name, "production")) == {
        "name": name,
        "label": "production",
        "version": 2,
        "versions": (await registry.resolve(sm, name, "production"))["versions"],
    }
    last = (await activations(sm, name))[-1]
    assert last["version"] == 2 and last["experiment_id"] is None


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    arms = [{"version": 1, "weight": 0.7}, {"version": 2, "weight": 0.3}]
    subjects = [f"course-{i}" for i in range(20_000)]
    first = [assign("exp-1", s, arms) for s in subjects]
    assert first == [assign("exp-1", s, arms) for s in subjects]  # sticky
    share = Counter(first)[1] / len(subjects)
    assert abs(share - 0.7) < 0.015, share
    # another experiment shuffles subjects independently
    other = [assign("exp-2", s, arms) for s in subjects]
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 5000
