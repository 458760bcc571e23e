"""The fault-injecting LLM server itself: it knows every shipped prompt, and each fault
looks to a client the way the real failure does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.llm.library import LIBRARY
from tests.chaos.harness import FaultLLM
from tests.support.fault_llm import Identify
from tests.support.llm import read_answers

DUMMY = {"string": "topic: Fault tests\nlesson_order: 2", "integer": 3, "number": 2.0,
         "boolean": True, "messages": []}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_shipped_prompt_is_recognised(name: str) -> None:
    template = LIBRARY[name]
    messages = template.render({k: DUMMY[v.type] for k, v in template.variables.items()})
    found = Identify()
    assert found.task(messages) == template.task
    if template.task in ("write_lesson", "quiz", "coding_exercise", "welcome_plan"):
        step = found.step(template.task, messages)
        assert step["topic"] == "Fault tests", step


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLLM]:
    llm = FaultLLM(Path(tmp_path_factory.mktemp("fault-llm")), ["--seed", "3"])
    llm.start()
    yield llm
    llm.stop()


def lesson_request(topic: str, stream: bool = True) -> dict[str, Any]:
    template = LIBRARY["content.write_lesson"]
    values = {k: DUMMY[v.type] for k, v in template.variables.items()}
    values["brief"] = f"title: Loops\ncourse_topic: {topic}\nmodule_order: 1 of 3"
    return {"model": "chaos", "stream": stream, "messages": template.render(values)}


def read_stream(client: httpx.Client, body: dict[str, Any]) -> tuple[str, bool, str | None]:
    """(text, whether [DONE] came, the error) of a streamed completion."""
    text, done = "", False
    try:
        with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            for line in resp.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    for choice in json.loads(line[6:]).get("choices", []):
                        text += choice["delta"].get("content") or ""
    except httpx.HTTPError as exc:
        return text, done, type(exc).__name__
    return text, done, None


def test_faults_look_like_the_real_thing(server: FaultLLM) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        server.set_faults(rate_429=1.0, retry_after=2)
        resp = client.post("/v1/chat/completions", json=lesson_request("429s"))
        assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
        server.set_faults(rate_429=0, rate_5xx=1.0)
        assert client.post("/v1/chat/completions", json=lesson_request("5xx")).status_code >= 500
        server.set_faults(rate_5xx=0)
        whole, done, error = read_stream(client, lesson_request("same"))
        assert done and error is None and whole.startswith("#")
        server.set_faults(cut_stream=1.0, cut_mode="abort")
        cut, done, error = read_stream(client, lesson_request("same"))
        assert error == "RemoteProtocolError" and not done  # an incomplete chunked body
        assert 0 < len(cut) < len(whole) and whole.startswith(cut)
        server.set_faults(cut_mode="clean")
        cut, done, error = read_stream(client, lesson_request("same"))
        assert error is None and not done and 0 < len(cut) < len(whole)
        server.set_faults(cut_stream=0, timeout_rate=1.0, hang=3)
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/chat/completions", json=lesson_request("hang"), timeout=1)
        server.set_faults(timeout_rate=0)
        answer = client.post("/v1/chat/completions", json=lesson_request("same", stream=False))
        assert answer.json()["choices"][0]["message"]["content"] == whole
        assert client.post("/_faults", json={"nonsense": 1}).status_code == 422

    records = server.records()
    assert [r["outcome"] for r in records] == [
        "429", "5xx", "ok", "cut", "cut_clean", "timeout", "ok",
    ]  # fmt: skip
    assert all(r["task"] == "write_lesson" and r["order"] == 1 for r in records)
    assert {r["step"] for r in records if r["topic"] == "same"} == {"same|write_lesson|1"}


@pytest.mark.parametrize("way", ["direct", "unwrapped"])
async def test_the_llm_client_retries_dropped_and_cut_streams_it_reads_itself(
    way: str, server: FaultLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads an OpenAI-compatible provider's stream itself, through the OpenAI
    SDK (``direct``) or past litellm's stream wrapper: a connection dropped mid-answer
    (an incomplete chunked body) and a body ended cleanly without a finish reason are
    both retried, and the answer is the whole one."""
    from shared.llm import LLMClient
    from shared.settings import LecternSettings

    direct = read_answers(monkeypatch, way)
    server.set_faults(
        rate_429=0, rate_5xx=0, timeout_rate=0, cut_stream=0, invalid_json=0,
        cut_mode="mixed", cut_first={"write_lesson": 2},
    )  # fmt: skip
    settings = LecternSettings(
        llm_model="openai/chaos",
        llm_api_base=f"{server.url}/v1",
        llm_api_key="sk-test-dummy",
        llm_max_retries=2,
        llm_timeout_s=10.0,
        **direct,
    )
    client = LLMClient(settings, service=f"t-fault-{way}")
    client.backoff_base_s = 0.01
    streamed: list[str] = []
    attempts: list[int] = []

    async def on_delta(text: str) -> None:
        streamed.append(text)

    async def on_attempt(number: int) -> None:
        attempts.append(number)
        streamed.clear()  # a new attempt: the text so far is void

    request = lesson_request(f"{way} reads")
    result = await client.stream(
        task="write_lesson",
        messages=request["messages"],
        prompt_name="content.write_lesson",
        prompt_version="1",
        on_delta=on_delta,
        on_attempt=on_attempt,
    )
    outcomes = [r["outcome"] for r in server.records() if r["topic"] == f"{way} reads"]
    assert outcomes == ["cut", "cut_clean", "ok"]
    assert attempts == [1, 2, 3] and result.attempts == 3
    with httpx.Client(base_url=server.url, timeout=10) as http:
        whole, done, error = read_stream(http, lesson_request(f"{way} reads"))
    assert done and error is None
    assert result.text == whole == "".join(streamed)
    assert result.output_tokens > 0
