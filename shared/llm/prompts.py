"""Where a service gets the prompt for an LLM call: rendered from a template by name.

:class:`DefaultPrompts` renders the templates Lectern ships (``shared.llm.library``).
The prompt registry's resolver (same interface) asks the registry first and falls
back to these defaults when it cannot be reached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from shared.llm.templates import ModelConfig, NamedTemplate

log = logging.getLogger("lectern.prompts")

DEFAULT_VERSION = "default"  # the version logged for a shipped default (not a registry version)


@dataclass(frozen=True)
class RenderedPrompt:
    """A template resolved to one version and rendered: what an LLM call sends."""

    name: str
    version: str  # a registry version ("3"), or DEFAULT_VERSION for a shipped default
    messages: list[dict[str, str]]
    model: ModelConfig
    experiment_id: str | None = None  # set when an A/B experiment chose the version
    fallback: bool = False  # the registry could not be asked: the shipped default was used


class PromptSource(Protocol):
    """Renders prompts by name."""

    async def render(
        self, name: str, variables: dict[str, Any], *, subject: str | None = None
    ) -> RenderedPrompt:
        """The prompt ``name`` rendered with ``variables``.

        ``subject`` (a course or user id) keeps A/B assignment sticky. Raises
        TemplateError when the variables do not fit the template.
        """
        ...


class DefaultPrompts:
    """The shipped templates, rendered locally (no registry)."""

    def __init__(self, library: dict[str, NamedTemplate] | None = None) -> None:
        if library is None:
            from shared.llm.library import LIBRARY

            library = LIBRARY
        self.library = library

    def template(self, name: str) -> NamedTemplate:
        """The shipped template ``name`` (KeyError naming it when there is none)."""
        try:
            return self.library[name]
        except KeyError:
            raise KeyError(f"no shipped prompt template named {name!r}") from None

    async def render(
        self, name: str, variables: dict[str, Any], *, subject: str | None = None
    ) -> RenderedPrompt:
        template = self.template(name)
        return RenderedPrompt(
            name=name,
            version=DEFAULT_VERSION,
            messages=template.render(variables),
            model=template.model.model_copy(),
        )
