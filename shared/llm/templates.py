"""Prompt templates: chat messages with declared, typed variables, rendered strictly.

A template is what the prompt registry stores as a version and what the services ship
as defaults. Its messages are ``{role, content}`` with ``{name}`` placeholders (Python
``str.format`` syntax: ``{{`` for a literal brace); a message ``{"role":
"placeholder", "content": "history"}`` expands into the list of messages held by the
``messages``-typed variable ``history`` (a chat history of any length).

Rendering is strict: a missing or unknown variable, a value of the wrong type, or a
placeholder no variable declares is an error naming it, never an empty string.
Placeholders are plain names only (no ``{x.attr}`` or ``{x[0]}``), so a template can
never reach into the objects it is given.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VariableType = Literal["string", "integer", "number", "boolean", "messages"]
Role = Literal["system", "user", "assistant", "placeholder"]
_IDENTIFIER_MAX = 64


class TemplateError(ValueError):
    """A template that cannot be saved, or rendered with the values given."""


class Variable(BaseModel):
    """A declared variable of a template."""

    model_config = ConfigDict(extra="forbid")

    type: VariableType = Field("string", description="Type the value must have.")
    description: str = Field("", max_length=500, description="What the variable holds.")


class TemplateMessage(BaseModel):
    """One chat message of a template (``placeholder``: a ``messages`` variable's name)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(max_length=50_000)


class ModelConfig(BaseModel):
    """How to call the model with this template (unset fields: the service's defaults)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=200, description="A litellm model name.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    response_schema: str | None = Field(
        None, max_length=200, description="Name of the output schema the service validates."
    )


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields of ``text``; TemplateError for anything but plain names."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed placeholder: {exc}") from exc
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or len(field) > _IDENTIFIER_MAX:
            raise TemplateError(
                f"placeholder {{{field}}} must be a plain variable name (write {{{{ for a brace)"
            )
        if spec or conversion:
            raise TemplateError(f"placeholder {{{field}}} may not have a format or conversion")
        names.append(field)
    return names


class PromptTemplate(BaseModel):
    """A chat prompt: messages, declared variables and the model configuration."""

    model_config = ConfigDict(extra="forbid")

    messages: list[TemplateMessage] = Field(min_length=1, max_length=50)
    variables: dict[str, Variable] = Field(default_factory=dict, max_length=50)
    model: ModelConfig = Field(default_factory=ModelConfig)

    @model_validator(mode="after")
    def _consistent(self) -> PromptTemplate:
        used = self.used_variables()
        for name in self.variables:
            if not name.isidentifier():
                raise TemplateError(f"variable name {name!r} is not a plain name")
        undeclared = sorted(set(used) - set(self.variables))
        if undeclared:
            raise TemplateError(f"placeholders without a declared variable: {undeclared}")
        unused = sorted(set(self.variables) - set(used))
        if unused:
            raise TemplateError(f"declared variables no message uses: {unused}")
        for message in self.messages:
            if message.role == "placeholder":
                kind = self.variables[message.content.strip()].type
                if kind != "messages":
                    raise TemplateError(
                        f"placeholder message {message.content!r} needs a messages variable, "
                        f"not {kind}"
                    )
        in_text = {
            n for m in self.messages if m.role != "placeholder" for n in placeholders(m.content)
        }
        for name, var in self.variables.items():
            if var.type == "messages" and name in in_text:
                raise TemplateError(f"messages variable {name!r} can only be a placeholder message")
            if var.type == "messages" and not any(
                m.role == "placeholder" and m.content.strip() == name for m in self.messages
            ):
                raise TemplateError(f"messages variable {name!r} is only usable as a placeholder")
        return self

    def used_variables(self) -> list[str]:
        """Every variable the messages refer to, in order of first use."""
        seen: list[str] = []
        for message in self.messages:
            found = (
                [message.content.strip()]
                if message.role == "placeholder"
                else placeholders(message.content)
            )
            seen += [n for n in found if n not in seen]
        return seen

    def digest(self) -> str:
        """A short hash of the template's content (equal templates, equal digests)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def render(self, values: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages with ``values`` filled in (TemplateError naming what is wrong)."""
        missing = sorted(set(self.variables) - set(values))
        if missing:
            raise TemplateError(f"missing variables: {', '.join(missing)}")
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise TemplateError(f"unknown variables: {', '.join(unknown)}")
        texts: dict[str, str] = {}
        for name, var in self.variables.items():
            if var.type != "messages":
                texts[name] = _as_text(name, var.type, values[name])
        rendered: list[dict[str, str]] = []
        for message in self.messages:
            if message.role == "placeholder":
                rendered += _as_messages(message.content.strip(), values[message.content.strip()])
            else:
                rendered.append({"role": message.role, "content": message.content.format(**texts)})
        return rendered


def _as_text(name: str, kind: str, value: Any) -> str:
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }[kind]
    if not ok:
        raise TemplateError(f"variable {name} must be a {kind}, not {type(value).__name__}")
    if kind == "number":
        return f"{value:g}"
    if kind == "boolean":
        return "yes" if value else "no"
    return str(value)


def _as_messages(name: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise TemplateError(f"variable {name} must be a list of messages")
    out = []
    for index, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or item.get("role") not in ("system", "user", "assistant")
            or not isinstance(item.get("content"), str)
        ):
            raise TemplateError(f"variable {name}[{index}] must be {{role, content}}")
        out.append({"role": item["role"], "content": item["content"]})
    return out


class NamedTemplate(PromptTemplate):
    """A template with its registry name, task and description (a shipped default)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[a-z][a-z0-9_.-]*$")
    task: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=1000)

    def template(self) -> PromptTemplate:
        """The versioned part (what a registry version stores)."""
        return PromptTemplate(messages=self.messages, variables=self.variables, model=self.model)
