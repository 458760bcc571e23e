"""Prompts from the registry, for the services: cached, pushed fresh, safe when it is down.

:class:`RegistryPrompts` resolves ``name@label`` (``production`` unless configured)
over RPC once and caches what it resolves to: one version, or an A/B experiment's
arms, with the content of each. The registry announces every label move with
``prompt.activated``; each process drops that entry at once (push), and entries
also expire after ``ttl_s`` in case an announcement was missed while disconnected.

An experiment's version is chosen here, by a stable hash of the experiment and the
subject (a course or user id): the same subject always gets the same version, in
every process, with no state to share. When the registry cannot be asked, the
shipped default is rendered and reported as a fallback (version ``default``),
never as a registry version; the failure is remembered for ``retry_s`` so a down
registry does not slow every call. Callers that miss the cache together share one
request: a worker taking a thousand messages at once asks once, not a thousand times
(FastStream sends one RPC at a time per process, so those would queue behind each other).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.llm.prompts import DEFAULT_VERSION, DefaultPrompts, RenderedPrompt
from shared.llm.templates import PromptTemplate, TemplateError

log = logging.getLogger("lectern.prompts")

Ask = Callable[[str, dict[str, Any]], Awaitable[Any]]  # (query, body) -> data; raises


def assign(experiment_id: str, subject: str | None, arms: list[dict[str, Any]]) -> int:
    """The arm (version) of ``subject`` in an experiment: sticky, weighted, stateless."""
    digest = hashlib.sha256(f"{experiment_id}:{subject or ''}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    total = sum(float(a["weight"]) for a in arms)
    edge = 0.0
    for arm in arms:
        edge += float(arm["weight"]) / total
        if point < edge:
            return int(arm["version"])
    return int(arms[-1]["version"])


@dataclass
class _Entry:
    resolved: dict[str, Any]
    templates: dict[str, PromptTemplate]
    fetched_at: float


class RegistryPrompts:
    """A :class:`~shared.llm.prompts.PromptSource` backed by the prompt registry."""

    def __init__(
        self,
        ask: Ask,
        *,
        label: str = "production",
        defaults: DefaultPrompts | None = None,
        ttl_s: float = 300.0,
        retry_s: float = 5.0,
    ) -> None:
        self.ask = ask
        self.label = label
        self.defaults = defaults or DefaultPrompts()
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self._cache: dict[str, _Entry] = {}
        self._down_until: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Task[_Entry | None]] = {}

    def invalidate(self, name: str, label: str) -> None:
        """Forget ``name@label`` (called on ``prompt.activated``)."""
        if label == self.label:
            self._cache.pop(name, None)
            self._down_until.pop(name, None)
            self._fetching.pop(name, None)  # a request under way may predate the move

    async def _entry(self, name: str) -> _Entry | None:
        now = time.monotonic()
        entry = self._cache.get(name)
        if entry is not None and now - entry.fetched_at < self.ttl_s:
            return entry
        if self._down_until.get(name, 0.0) > now:
            return None
        fetching = self._fetching.get(name)
        if fetching is None:
            fetching = asyncio.create_task(self._fetch(name), name=f"prompt-resolve:{name}")
            self._fetching[name] = fetching
        # shielded: a caller that gives up (cancelled) leaves the others their answer
        return await asyncio.shield(fetching)

    async def _fetch(self, name: str) -> _Entry | None:
        """Ask the registry for ``name``; cache the answer (or the failure) unless a
        ``prompt.activated`` came meanwhile."""
        me = asyncio.current_task()
        try:
            return await self._ask(name, current=lambda: self._fetching.get(name) is me)
        finally:
            if self._fetching.get(name) is me:
                del self._fetching[name]

    async def _ask(self, name: str, current: Callable[[], bool]) -> _Entry | None:
        now = time.monotonic()
        try:
            resolved = await self.ask("resolve", {"name": name, "label": self.label})
            parsed = {
                v: PromptTemplate.model_validate(content)
                for v, content in resolved["versions"].items()
            }
        except Exception as exc:  # unreachable, not seeded, or unreadable: the default serves
            log.warning(
                "prompt %s@%s: registry unavailable (%s); using the default", name, self.label, exc
            )
            if current():
                self._down_until[name] = now + self.retry_s
            return None
        entry = _Entry(resolved, parsed, now)
        if current():
            self._cache[name] = entry
        return entry

    async def render(
        self, name: str, variables: dict[str, Any], *, subject: str | None = None
    ) -> RenderedPrompt:
        entry = await self._entry(name)
        if entry is None:
            return await self._default(name, variables)
        resolved = entry.resolved
        experiment_id = resolved.get("experiment_id")
        if experiment_id:
            version = assign(experiment_id, subject, resolved["arms"])
        else:
            version = int(resolved["version"])
        template = entry.templates[str(version)]
        try:
            messages = template.render(variables)
        except TemplateError as exc:
            # the registry refuses versions whose variables differ from the template's,
            # so this is a service release the registry has not caught up with
            log.error(
                "prompt %s version %s does not fit this service (%s); using the default",
                name,
                version,
                exc,
            )
            return await self._default(name, variables)
        return RenderedPrompt(
            name=name,
            version=str(version),
            messages=messages,
            model=template.model.model_copy(),
            experiment_id=experiment_id,
        )

    async def _default(self, name: str, variables: dict[str, Any]) -> RenderedPrompt:
        template = self.defaults.template(name)
        return RenderedPrompt(
            name=name,
            version=DEFAULT_VERSION,
            messages=template.render(variables),
            model=template.model.model_copy(),
            fallback=True,
        )
