"""The real LLM client with the built-in offline model writes and revises a lesson."""

from __future__ import annotations

import pytest

from services.content import service
from shared.llm import LLMClient
from shared.settings import get_settings
from tests.content.conftest import Harness, new_course_id, revise_cmd, write_cmd

pytestmark = pytest.mark.integration


async def test_offline_model_writes_a_full_lesson_and_revises_it(harness: Harness) -> None:
    settings = get_settings("content")
    assert settings.llm_model.startswith("offline/")
    harness.llm = LLMClient(settings, service="content")
    course_id = new_course_id()

    await service.write_lesson(write_cmd(course_id), harness.deps)
    await service.revise_lesson(
        revise_cmd(course_id, feedback="Add a second example"), harness.deps
    )

    v1, v2 = await harness.lessons(course_id)
    assert v1.markdown.startswith("# Coroutines and the event loop")
    assert "```mermaid" in v1.markdown
    assert "## Knowledge check" in v1.markdown
    assert "```python" in v1.markdown  # a technical topic gets a worked example
    assert "*Part of the course on Python asyncio.*" in v1.markdown
    assert "- Explain what await does" in v1.markdown
    assert v1.input_tokens > 0 and v1.output_tokens > 0 and v1.model.startswith("offline/")
    assert v2.markdown.startswith(v1.markdown.rstrip())
    assert 'Revised in response to: "Add a second example"' in v2.markdown
    streamed = "".join(c.payload.text for c in harness.chunks if c.payload.step == "lesson:2")
    assert streamed == v1.markdown
