"""The offline model's grounded tasks: plans and lessons written from given passages.

The user message ends with ``=== SOURCES ===`` and passages: a ``[S<n>]`` line, then
``source:`` and ``text:`` lines (:func:`shared.citations.format_passages`). Every
sentence taken from a passage ends with its marker; what the offline model adds on its
own goes under "Beyond your sources" without one, as the templates ask of a real model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.citations import SOURCES_HEADER
from shared.llm import offline


@dataclass(frozen=True)
class Given:
    marker: str
    label: str
    text: str

    @property
    def heading(self) -> str:
        """The passage's own section title, else its file name."""
        _, _, section = self.label.partition(" — ")
        title = (section.split(" > ")[-1] if section else self.label.split(",")[0]).strip()
        return title or "Your materials"

    def sentences(self, count: int, max_words: int = 45) -> str:
        parts = re.split(r"(?<=[.!?])\s+", self.text.strip())
        words = " ".join(parts[:count]).split()
        text = " ".join(words[:max_words])
        return text if len(words) <= max_words else text.rstrip(".,;:") + "…"


def split_sources(text: str) -> tuple[str, list[Given]]:
    """The message before the sources, and the passages given after them."""
    if SOURCES_HEADER not in text:
        return text, []
    before, _, after = text.partition(SOURCES_HEADER)
    given = []
    for block in re.split(r"\n\s*\n", after.strip()):
        lines = block.strip().split("\n")
        marker = re.match(r"^\[(S\d+)\]$", lines[0].strip())
        fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        if marker and fields.get("text", "").strip():
            given.append(Given(marker.group(1), fields.get("source", ""), fields["text"].strip()))
    return before.rstrip(), given


def _without_sources(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation without the passages (a message of passages alone goes)."""
    out = []
    for m in messages:
        content = offline._text(m.get("content"))
        if m.get("role") == "user" and SOURCES_HEADER in content:
            content = split_sources(content)[0]
            if not content.strip():
                continue
        out.append({**m, "content": content})
    return out


def _latest_sources(messages: list[dict[str, Any]]) -> list[Given]:
    for content in reversed(offline._contents(messages, "user")):
        if SOURCES_HEADER in content:
            return split_sources(content)[1]
    return []


def _distinct(given: list[Given]) -> list[Given]:
    seen: set[str] = set()
    out = []
    for g in given:
        if g.heading.lower() not in seen:
            seen.add(g.heading.lower())
            out.append(g)
    return out


def write_grounded_lesson(messages: list[dict[str, Any]]) -> str:
    """A lesson whose sections teach the given passages, each sentence cited."""
    brief_text, given = split_sources(offline._last(messages, "user"))
    brief = offline.parse_lesson_brief(brief_text)
    if not given:
        return offline.write_lesson(brief)
    lines = [f"# {brief.title}", "", "*Written from your course materials.*", ""]
    lines += [
        "## Overview",
        "",
        (brief.description or f"This lesson introduces {brief.title}.")
        + f" It is written for a {brief.level} learner.",
        "",
        "## Learning objectives",
        "",
        *[f"- {objective}" for objective in brief.objectives],
        "",
    ]
    taught = _distinct(given)[:5]
    for g in taught:
        lines += [f"## {g.heading}", "", f"{g.sentences(2)} [{g.marker}]", ""]
    lines += [
        "## Beyond your sources",
        "",
        "Practise each idea on a small example of your own and note what surprised you: "
        "this advice is general, not from your materials.",
        "",
        "## Summary",
        "",
        f"You worked through {len(taught)} passages of your materials on {brief.title}.",
        "",
        "## Knowledge check",
        "",
    ]
    for n, g in enumerate(taught[:3], start=1):
        lines += [
            f"{n}. **What do your materials say about {g.heading}?**",
            f"   *Answer:* {g.sentences(1, 30)} [{g.marker}]",
        ]
    return "\n".join(lines) + "\n"


def _grounded_plan(profile: offline.Profile, given: list[Given]) -> str:
    count = offline.module_count(profile.duration_hours)
    per_module = offline._hours(profile.duration_hours / count)
    modules = _distinct(given)[:count]
    lines = [
        f"# {profile.topic} — course plan",
        "",
        f"This {offline._fmt_hours(profile.duration_hours)}-hour course on {profile.topic} "
        "is built from your own materials: each module follows what they cover.",
        "",
        "## Modules",
        "",
    ]
    for number, g in enumerate(modules, start=1):
        lines.append(
            f"{number}. **{g.heading}** — {g.sentences(1, 20)} [{g.marker}] "
            f"({offline._fmt_hours(per_module)} h)"
        )
    if len(modules) < count:  # the materials cover less than the time: practice, no marker
        lines.append(
            f"{len(modules) + 1}. **Capstone: your own {profile.topic} project** — "
            f"A small project that ties the course together. ({offline._fmt_hours(per_module)} h)"
        )
    lines += ["", "Reply with any change you would like, or accept the plan to continue."]
    return "\n".join(lines) + "\n"


def grounded_welcome_plan(messages: list[dict[str, Any]]) -> str:
    """The welcome plan, its modules taken from the given passages."""
    profile_text, given = split_sources(offline._last(messages, "user"))
    profile = offline.parse_profile(profile_text)
    return _grounded_plan(profile, given) if given else offline.render_plan(profile)


def grounded_refine_plan(messages: list[dict[str, Any]]) -> str:
    """The refined plan; a plan written before the materials came is rebuilt from them."""
    given = _latest_sources(messages)
    plain = _without_sources(messages)
    latest = offline._latest_plan(plain[:-1])
    if given and (latest is None or not re.search(r"\[S\d+\]", latest)):
        users = offline._contents(plain, "user")
        profile = offline.parse_profile(users[0] if users else "")
        rebuilt = {"role": "assistant", "content": _grounded_plan(profile, given)}
        plain = [*plain[:-1], rebuilt, plain[-1]]
    return offline.refine_plan(plain)
