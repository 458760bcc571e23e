"""The registry: templates, immutable versions, movable labels, A/B experiments.

Every change a service must see (a label moved, an experiment started or stopped)
is announced with ``prompt.activated`` through the outbox, in the same transaction.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.prompts.store import experiments, labels, metadata, templates, versions
from shared.contracts.base import new_id
from shared.contracts.prompts import PromptActivated, PromptActivatedPayload
from shared.llm.templates import NamedTemplate, PromptTemplate
from shared.outbox import enqueue
from shared.rpc import RpcError, not_found

SHIPPED_BY = "lectern"
SEEDED_LABELS = ("production", "staging")
LABEL_PATTERN = r"^[a-z][a-z0-9_-]{0,99}$"


def _invalid(message: str) -> RpcError:
    return RpcError(422, message)


def version_json(row: Any) -> dict[str, Any]:
    """A stored version as the API returns it."""
    return {
        "name": row.name,
        "version": row.version,
        "messages": row.messages,
        "variables": row.variables,
        "model": row.model_config,
        "digest": row.digest,
        "change_note": row.change_note,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def template_of(row: Any) -> PromptTemplate:
    """The stored version as a template (validated when it was saved)."""
    return PromptTemplate.model_validate(
        {"messages": row.messages, "variables": row.variables, "model": row.model_config}
    )


async def _activated(
    session: AsyncSession, name: str, label: str, *, author: str, causation: str | None = None
) -> None:
    """Announce what ``name@label`` resolves to now."""
    target = await _target(session, name, label)
    job_id = new_id()
    await enqueue(
        session,
        metadata,
        PromptActivated(
            job_id=job_id,
            correlation_id=causation or job_id,
            user_id=author,
            payload=PromptActivatedPayload(
                name=name,
                label=label,
                version=target.get("version"),
                experiment_id=target.get("experiment_id"),
            ),
        ),
    )


async def _next_version(session: AsyncSession, name: str) -> int:
    # the template row is locked: two saves at once get consecutive numbers
    await session.execute(
        select(templates.c.name).where(templates.c.name == name).with_for_update()
    )
    latest = await session.scalar(
        select(func.max(versions.c.version)).where(versions.c.name == name)
    )
    return int(latest or 0) + 1


async def _insert_version(
    session: AsyncSession, name: str, template: PromptTemplate, note: str, author: str
) -> int:
    number = await _next_version(session, name)
    dumped = template.model_dump(mode="json")
    await session.execute(
        insert(versions).values(
            name=name,
            version=number,
            messages=dumped["messages"],
            variables=dumped["variables"],
            model_config=dumped["model"],
            digest=template.digest(),
            change_note=note,
            created_by=author,
        )
    )
    return number


async def seed(sessionmaker: Any, library: dict[str, NamedTemplate]) -> list[str]:
    """Make the shipped templates available; returns the names whose default changed.

    A template new to the registry gets version 1 with ``production`` and ``staging``
    on it. A shipped default that changed (a new release) becomes a new version, and
    a label still on the previous shipped default follows it; a label a person moved
    to a version of their own stays where it is.
    """
    changed = []
    for name, shipped in sorted(library.items()):
        template = shipped.template()
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert(templates)
                .values(name=name, task=shipped.task, description=shipped.description)
                .on_conflict_do_nothing()
            )
            await session.execute(
                select(templates).where(templates.c.name == name).with_for_update()
            )
            known = await session.scalar(
                select(versions.c.version).where(
                    versions.c.name == name, versions.c.digest == template.digest()
                )
            )
            if known is not None:
                continue
            number = await _insert_version(session, name, template, "shipped default", SHIPPED_BY)
            changed.append(name)
            for label in SEEDED_LABELS:
                current = (
                    await session.execute(
                        select(labels.c.version, versions.c.created_by)
                        .join(
                            versions,
                            (versions.c.name == labels.c.name)
                            & (versions.c.version == labels.c.version),
                        )
                        .where(labels.c.name == name, labels.c.label == label)
                    )
                ).first()
                if current is None or current.created_by == SHIPPED_BY:
                    await _set_label(session, name, label, number, SHIPPED_BY)
    return changed


async def _set_label(
    session: AsyncSession, name: str, label: str, version: int, author: str
) -> None:
    await session.execute(
        insert(labels)
        .values(name=name, label=label, version=version, updated_by=author)
        .on_conflict_do_update(
            index_elements=[labels.c.name, labels.c.label],
            set_={"version": version, "updated_by": author, "updated_at": func.now()},
        )
    )
    await _activated(session, name, label, author=author)


async def create_version(
    sessionmaker: Any,
    name: str,
    body: dict[str, Any],
    *,
    author: str,
) -> dict[str, Any]:
    """Save a new version of ``name`` (a new template when ``task`` is given)."""
    try:
        template = PromptTemplate.model_validate(
            {k: body[k] for k in ("messages", "variables", "model") if k in body}
        )
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise _invalid(f"invalid template: {details}") from exc
    note = str(body.get("change_note") or "").strip()
    if not note:
        raise _invalid("change_note: say what changed and why")
    async with sessionmaker() as session, session.begin():
        exists = await session.scalar(select(templates.c.name).where(templates.c.name == name))
        latest = (
            await session.execute(
                select(versions.c.variables)
                .where(versions.c.name == name)
                .order_by(versions.c.version.desc())
                .limit(1)
            )
        ).first()
        if latest is not None:
            _same_variables(latest.variables, template)
        if exists is None:
            if not body.get("task"):
                raise not_found(f"prompt template {name} (give 'task' to create it)")
            await session.execute(
                insert(templates).values(
                    name=name, task=str(body["task"]), description=str(body.get("description", ""))
                )
            )
        number = await _insert_version(session, name, template, note, author)
        row = (
            await session.execute(
                select(versions).where(versions.c.name == name, versions.c.version == number)
            )
        ).one()
        return version_json(row)


def _same_variables(previous: dict[str, Any], template: PromptTemplate) -> None:
    """A new version takes the variables the services supply: the same names and types."""
    before = {k: v.get("type", "string") for k, v in previous.items()}
    after = {k: v.type for k, v in template.variables.items()}
    if before == after:
        return
    problems = [f"{k} is missing" for k in sorted(set(before) - set(after))]
    problems += [f"{k} is not supplied by the services" for k in sorted(set(after) - set(before))]
    problems += [
        f"{k} must stay a {before[k]}"
        for k in sorted(set(before) & set(after))
        if before[k] != after[k]
    ]
    raise _invalid(
        "variables: the services supply "
        + ", ".join(f"{k} ({t})" for k, t in sorted(before.items()))
        + "; "
        + "; ".join(problems)
    )


async def move_label(
    sessionmaker: Any, name: str, label: str, version: int, *, author: str
) -> dict[str, Any]:
    """Point ``label`` at ``version`` (rollback is moving it back)."""
    async with sessionmaker() as session, session.begin():
        found = await session.scalar(
            select(versions.c.version).where(versions.c.name == name, versions.c.version == version)
        )
        if found is None:
            raise not_found(f"version {version} of prompt template {name}")
        await _set_label(session, name, label, version, author)
        return {"name": name, "label": label, **(await _target(session, name, label))}


def _check_arms(arms: Any) -> list[dict[str, Any]]:
    if not isinstance(arms, list) or len(arms) < 2:
        raise _invalid("arms: give at least two {version, weight}")
    checked = []
    for index, arm in enumerate(arms):
        if not isinstance(arm, dict):
            raise _invalid(f"arms[{index}]: must be {{version, weight}}")
        version, weight = arm.get("version"), arm.get("weight", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _invalid(f"arms[{index}].version: a version number")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not weight > 0:
            raise _invalid(f"arms[{index}].weight: a positive number")
        if not math.isfinite(weight):
            raise _invalid(f"arms[{index}].weight: a finite number")
        checked.append({"version": version, "weight": float(weight)})
    if len({a["version"] for a in checked}) != len(checked):
        raise _invalid("arms: each version may appear once")
    total = sum(a["weight"] for a in checked)
    return [{"version": a["version"], "weight": a["weight"] / total} for a in checked]


async def start_experiment(
    sessionmaker: Any, name: str, label: str, body: dict[str, Any], *, author: str
) -> dict[str, Any]:
    """Split ``name@label`` between versions by weight, sticky per subject."""
    arms = _check_arms(body.get("arms"))
    async with sessionmaker() as session, session.begin():
        known = set(
            (
                await session.scalars(
                    select(versions.c.version).where(
                        versions.c.name == name,
                        versions.c.version.in_([a["version"] for a in arms]),
                    )
                )
            ).all()
        )
        missing = [a["version"] for a in arms if a["version"] not in known]
        if missing:
            raise not_found(f"versions {missing} of prompt template {name}")
        running = await session.scalar(
            select(experiments.c.experiment_id).where(
                experiments.c.name == name,
                experiments.c.label == label,
                experiments.c.status == "running",
            )
        )
        if running is not None:
            raise RpcError(
                409, f"experiment {running} already splits {name}@{label}; stop it first"
            )
        experiment_id = new_id()
        await session.execute(
            insert(experiments).values(
                experiment_id=experiment_id,
                name=name,
                label=label,
                arms=arms,
                status="running",
                note=str(body.get("note") or ""),
                created_by=author,
            )
        )
        await _activated(session, name, label, author=author)
        row = (
            await session.execute(
                select(experiments).where(experiments.c.experiment_id == experiment_id)
            )
        ).one()
        return experiment_json(row)


async def stop_experiment(
    sessionmaker: Any, experiment_id: str, *, author: str, promote: int | None = None
) -> dict[str, Any]:
    """Stop an experiment; ``promote`` moves its label to the winning version."""
    async with sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                select(experiments)
                .where(experiments.c.experiment_id == experiment_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise not_found(f"experiment {experiment_id}")
        if row.status != "running":
            raise RpcError(409, f"experiment {experiment_id} is already stopped")
        if promote is not None and promote not in [a["version"] for a in row.arms]:
            raise _invalid(f"promote: version {promote} is not an arm of this experiment")
        await session.execute(
            update(experiments)
            .where(experiments.c.experiment_id == experiment_id)
            .values(status="stopped", stopped_at=func.now())
        )
        if promote is not None:
            await _set_label(session, row.name, row.label, promote, author)
        else:
            await _activated(session, row.name, row.label, author=author)
        row = (
            await session.execute(
                select(experiments).where(experiments.c.experiment_id == experiment_id)
            )
        ).one()
        return experiment_json(row)


def experiment_json(row: Any) -> dict[str, Any]:
    return {
        "experiment_id": row.experiment_id,
        "name": row.name,
        "label": row.label,
        "arms": row.arms,
        "status": row.status,
        "note": row.note,
        "created_by": row.created_by,
        "started_at": row.started_at.isoformat(),
        "stopped_at": row.stopped_at.isoformat() if row.stopped_at else None,
    }


async def _target(session: AsyncSession, name: str, label: str) -> dict[str, Any]:
    """What ``name@label`` resolves to: a running experiment's arms, or the label's version."""
    running = (
        await session.execute(
            select(experiments.c.experiment_id, experiments.c.arms).where(
                experiments.c.name == name,
                experiments.c.label == label,
                experiments.c.status == "running",
            )
        )
    ).first()
    if running is not None:
        return {"experiment_id": running.experiment_id, "arms": running.arms}
    version = await session.scalar(
        select(labels.c.version).where(labels.c.name == name, labels.c.label == label)
    )
    if version is None:
        raise not_found(f"label {label} of prompt template {name}")
    return {"version": version}


async def resolve(sessionmaker: Any, name: str, label: str) -> dict[str, Any]:
    """``name@label`` with the content of every version it may resolve to (for caching)."""
    async with sessionmaker() as session:
        target = await _target(session, name, label)
        wanted = [a["version"] for a in target["arms"]] if "arms" in target else [target["version"]]
        rows = await session.execute(
            select(versions).where(versions.c.name == name, versions.c.version.in_(wanted))
        )
        contents = {
            str(r.version): {
                "messages": r.messages,
                "variables": r.variables,
                "model": r.model_config,
            }
            for r in rows
        }
    return {"name": name, "label": label, **target, "versions": contents}


async def list_templates(sessionmaker: Any, search: str = "") -> list[dict[str, Any]]:
    """Templates (filtered by ``search`` in name, task or description), with their labels."""
    async with sessionmaker() as session:
        query = select(templates).order_by(templates.c.name)
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                func.lower(templates.c.name).like(pattern)
                | func.lower(templates.c.task).like(pattern)
                | func.lower(templates.c.description).like(pattern)
            )
        rows = (await session.execute(query)).all()
        label_rows = (await session.execute(select(labels))).all()
        counts = dict(
            (
                await session.execute(
                    select(versions.c.name, func.count()).group_by(versions.c.name)
                )
            ).all()
        )
    by_name: dict[str, dict[str, int]] = {}
    for lbl in label_rows:
        by_name.setdefault(lbl.name, {})[lbl.label] = lbl.version
    return [
        {
            "name": r.name,
            "task": r.task,
            "description": r.description,
            "versions": counts.get(r.name, 0),
            "labels": by_name.get(r.name, {}),
        }
        for r in rows
    ]


async def get_template(sessionmaker: Any, name: str) -> dict[str, Any]:
    """A template with its versions (newest first), labels and experiments."""
    async with sessionmaker() as session:
        row = (await session.execute(select(templates).where(templates.c.name == name))).first()
        if row is None:
            raise not_found(f"prompt template {name}")
        vs = (
            await session.execute(
                select(versions).where(versions.c.name == name).order_by(versions.c.version.desc())
            )
        ).all()
        ls = (await session.execute(select(labels).where(labels.c.name == name))).all()
        xs = (
            await session.execute(
                select(experiments)
                .where(experiments.c.name == name)
                .order_by(experiments.c.started_at.desc())
            )
        ).all()
    return {
        "name": row.name,
        "task": row.task,
        "description": row.description,
        "labels": {lbl.label: lbl.version for lbl in ls},
        "versions": [version_json(v) for v in vs],
        "experiments": [experiment_json(x) for x in xs],
    }


async def get_version(sessionmaker: Any, name: str, version: int) -> Any:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(versions).where(versions.c.name == name, versions.c.version == version)
            )
        ).first()
    if row is None:
        raise not_found(f"version {version} of prompt template {name}")
    return row


def _as_text(row: Any) -> list[str]:
    lines = []
    for message in row.messages:
        lines.append(f"[{message['role']}]")
        lines += message["content"].splitlines()
    lines.append("[variables]")
    lines += [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(row.variables.items())]
    lines.append("[model]")
    lines += [f"{k}: {json.dumps(v)}" for k, v in sorted(row.model_config.items())]
    return lines


async def diff(sessionmaker: Any, name: str, a: int, b: int) -> dict[str, Any]:
    """A unified diff between two versions (messages, variables, model configuration)."""
    old, new = await get_version(sessionmaker, name, a), await get_version(sessionmaker, name, b)
    lines = list(
        difflib.unified_diff(
            _as_text(old), _as_text(new), f"{name}@{a}", f"{name}@{b}", lineterm=""
        )
    )
    return {"name": name, "from": a, "to": b, "identical": not lines, "diff": "\n".join(lines)}
