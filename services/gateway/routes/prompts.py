"""Prompt administration (admin role) and feedback on generated material (any user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator, Field, model_validator
from sqlalchemy import select

from services.gateway.auth import AdminPrincipal, CurrentPrincipal
from services.gateway.commands import ask
from services.gateway.inputs import (
    PG_INT_MAX,
    Input,
    OptionalSearchText,
    SearchText,
    check_id,
)
from services.gateway.store import jobs
from shared.llm.templates import ModelConfig, TemplateMessage, Variable

router = APIRouter(tags=["prompts"])
admin = APIRouter(prefix="/v1/admin", tags=["prompt administration"])
PromptName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[a-z][a-z0-9_.-]*$")]
Label = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,99}$")]
Version = Annotated[int, Field(ge=1, le=PG_INT_MAX)]
ExperimentId = Annotated[str, Path(min_length=1, max_length=200), AfterValidator(check_id)]


class NewVersion(Input):
    """A new immutable version: messages, typed variables, model configuration, a note."""

    # the template's own models: malformed messages, variables or settings are a 422 here
    messages: list[TemplateMessage] = Field(min_length=1, max_length=50)
    variables: dict[str, Variable] = Field(default_factory=dict)
    model: ModelConfig = Field(default_factory=ModelConfig, examples=[{"temperature": 0.3}])
    change_note: str = Field(min_length=1, max_length=2000, examples=["Shorter system prompt"])
    task: str | None = Field(None, description="Only to create a new template.")
    description: str = Field("", max_length=1000)


class LabelMove(Input):
    version: Version


class Arm(Input):
    version: Version
    weight: float = Field(gt=0, le=1000)


class NewExperiment(Input):
    """Split a label between versions; each course keeps the version it was assigned."""

    label: str = Field("production", pattern=r"^[a-z][a-z0-9_-]{0,99}$")
    arms: list[Arm] = Field(min_length=2, max_length=10)
    note: str = Field("", max_length=2000)


class StopBody(Input):
    promote: Version | None = Field(None, description="Move the label to this arm's version.")


@admin.get("/prompts")
async def list_templates(request: Request, who: AdminPrincipal, search: SearchText = "") -> Any:
    """Templates (search by name, task, description) with their labels."""
    return await ask(request, "prompts", "list_templates", search=search)


@admin.get("/prompts/{name}")
async def get_template(name: PromptName, request: Request, who: AdminPrincipal) -> Any:
    """A template: its versions, labels and experiments."""
    return await ask(request, "prompts", "get_template", name=name)


@admin.get("/prompts/{name}/versions/{version}")
async def get_version(
    name: PromptName,
    version: Annotated[int, Path(ge=1, le=PG_INT_MAX)],
    request: Request,
    who: AdminPrincipal,
) -> Any:
    return await ask(request, "prompts", "get_version", name=name, version=version)


@admin.get("/prompts/{name}/diff")
async def diff(
    name: PromptName,
    request: Request,
    who: AdminPrincipal,
    a: Annotated[int, Query(ge=1, le=PG_INT_MAX)],
    b: Annotated[int, Query(ge=1, le=PG_INT_MAX)],
) -> Any:
    """A unified diff between versions ``a`` and ``b``."""
    return await ask(request, "prompts", "diff", name=name, a=a, b=b)


@admin.post("/prompts/{name}/versions", status_code=status.HTTP_201_CREATED)
async def create_version(
    name: PromptName, body: NewVersion, request: Request, who: AdminPrincipal
) -> Any:
    """Save a new version (no label moves: point one at it when it is ready)."""
    template = body.model_dump(exclude_none=True)
    return await ask(
        request, "prompts", "create_version", name=name, template=template, author=who.user_id
    )


@admin.put("/prompts/{name}/labels/{label}")
async def move_label(
    name: PromptName, label: Label, body: LabelMove, request: Request, who: AdminPrincipal
) -> Any:
    """Point ``label`` at a version; running services pick it up at once (rollback too)."""
    return await ask(
        request,
        "prompts",
        "move_label",
        name=name,
        label=label,
        version=body.version,
        author=who.user_id,
    )


@admin.post("/prompts/{name}/experiments", status_code=status.HTTP_201_CREATED)
async def start_experiment(
    name: PromptName, body: NewExperiment, request: Request, who: AdminPrincipal
) -> Any:
    return await ask(
        request,
        "prompts",
        "start_experiment",
        name=name,
        label=body.label,
        arms=[a.model_dump() for a in body.arms],
        note=body.note,
        author=who.user_id,
    )


@admin.post("/experiments/{experiment_id}/stop")
async def stop_experiment(
    experiment_id: ExperimentId,
    request: Request,
    who: AdminPrincipal,
    body: StopBody | None = None,
) -> Any:
    return await ask(
        request,
        "prompts",
        "stop_experiment",
        experiment_id=experiment_id,
        promote=body.promote if body else None,
        author=who.user_id,
    )


@admin.get("/experiments/{experiment_id}")
async def experiment_report(
    experiment_id: ExperimentId, request: Request, who: AdminPrincipal
) -> Any:
    """The arms side by side with counts and p-values."""
    return await ask(request, "prompts", "experiment_report", experiment_id=experiment_id)


@admin.get("/analytics")
async def analytics(
    request: Request,
    who: AdminPrincipal,
    name: OptionalSearchText = None,
) -> Any:
    """Per template version and model: calls, errors, latency, tokens, cost, quality."""
    return await ask(request, "prompts", "analytics", name=name)


class Feedback(Input):
    """A rating of what a job produced, or of one lesson."""

    job_id: str | None = Field(None, max_length=200)
    lesson_id: str | None = Field(None, max_length=200)
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent).")
    comment: str = Field("", max_length=4000)

    @model_validator(mode="after")
    def _one_target(self) -> Feedback:
        if (self.job_id is None) == (self.lesson_id is None):
            raise ValueError("give exactly one of job_id or lesson_id")
        return self


@router.post("/v1/feedback", status_code=status.HTTP_201_CREATED)
async def give_feedback(body: Feedback, request: Request, who: CurrentPrincipal) -> Any:
    """Rate a job's output or a lesson; prompt analytics count it for the version used."""
    target: dict[str, Any] = {}
    if body.job_id is not None:
        async with request.app.state.runtime.sessionmaker() as session:
            owner = await session.scalar(select(jobs.c.user_id).where(jobs.c.job_id == body.job_id))
        if owner != who.user_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {body.job_id} not found")
        target["job_id"] = body.job_id
    else:
        lesson = await ask(
            request, "content", "lesson_ref", user_id=who.user_id, lesson_id=body.lesson_id
        )
        target["course_id"] = lesson["course_id"]
        target["step"] = lesson["step"]
    return await ask(
        request,
        "prompts",
        "record_feedback",
        tenant_id=who.tenant_id,
        user_id=who.user_id,
        rating=body.rating,
        comment=body.comment,
        **target,
    )
