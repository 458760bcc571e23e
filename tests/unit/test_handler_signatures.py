"""No message handler takes a FastStream context parameter (``msg: RabbitMessage``).

fast-depends resolves such a parameter (``Context``, ``Header``, ...) for every message
with a synchronous call in a worker thread: a thread hop and about 0.3 ms of CPU per
message (measured with a real broker: 830 -> 520 us per message published and consumed),
on the busiest paths (the gateway's event log, every command). Handlers read the
delivery with ``shared.broker.current_delivery`` instead.

FastStream makes the same hop for a plain function given as a handler or a subscriber
filter (``to_async``): once per handler a message is checked against. Handlers and
filters are coroutine functions."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fast_depends.library import CustomField
from faststream.rabbit import RabbitBroker, RabbitMessage, TestRabbitBroker

from shared.broker import current_delivery
from shared.contracts.planner import PlanCourse
from shared.messaging import for_schema

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
SERVICES = ("gateway", "planner", "content", "assessment", "prompts")
ROOT = Path(__file__).resolve().parents[2]


def context_parameters(handler: Callable[..., Any]) -> list[str]:
    """The parameters of ``handler`` that fast-depends resolves as custom fields."""
    hints = typing.get_type_hints(handler, include_extras=True)
    found = []
    for name, hint in hints.items():
        metadata = getattr(hint, "__metadata__", ())
        if any(isinstance(m, CustomField) for m in metadata):
            found.append(name)
    return found


def threaded_calls(call: Any) -> list[str]:
    """What FastStream runs in a worker thread for every message ``call`` (one of a
    subscriber's ``calls``) is offered: a plain function as its filter or its handler.
    FastStream's ``to_async`` wraps such a function, and the wrapper is what it keeps."""
    found = []
    if getattr(call.filter, "__wrapped__", None) is not None:
        found.append("filter in a thread")
    if not inspect.iscoroutinefunction(call.handler._original_call):
        found.append("handler in a thread")
    return found


def context_parameters_of_handlers() -> dict[str, dict[str, list[str]]]:
    """Per service, each registered handler's context parameters (empty lists when fine).

    In a child process: importing the services' apps builds their runtimes and settings,
    which must not leak into the other tests of this process."""
    script = (
        "import importlib, json, sys\n"
        "from tests.unit.test_handler_signatures import context_parameters, threaded_calls\n"
        "out = {}\n"
        f"for service in {SERVICES!r}:\n"
        "    runtime = importlib.import_module(f'services.{service}.app').runtime\n"
        "    runtime._finish_subscribers()  # the catch-all and the RPC dispatcher\n"
        "    out[service] = {\n"
        "        call.handler._original_call.__qualname__:\n"
        "            context_parameters(call.handler._original_call)\n"
        "            + threaded_calls(call)\n"
        "        for subscriber in runtime.broker.subscribers for call in subscriber.calls\n"
        "    }\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_check_finds_a_context_parameter() -> None:
    async def with_message(body: dict[str, Any], msg: RabbitMessage) -> None: ...

    async def without(body: dict[str, Any]) -> None: ...

    assert context_parameters(with_message) == ["msg"]
    assert context_parameters(without) == []


async def test_the_check_finds_what_runs_in_a_thread() -> None:
    broker = RabbitBroker()

    def plain_filter(msg: Any) -> bool:
        return True

    async def async_filter(msg: Any) -> bool:
        return True

    @broker.subscriber("threads-a")(filter=plain_filter)
    def plain(body: dict[str, Any]) -> None: ...

    @broker.subscriber("threads-b")(filter=async_filter)
    async def coroutine(body: dict[str, Any]) -> None: ...

    found = {
        call.handler._original_call.__name__: threaded_calls(call)
        for subscriber in broker.subscribers
        for call in subscriber.calls
    }
    assert found == {"plain": ["filter in a thread", "handler in a thread"], "coroutine": []}


def test_for_schema_filters_without_a_thread() -> None:
    broker = RabbitBroker()

    @broker.subscriber("threads-c")(filter=for_schema(PlanCourse))
    async def handle(body: dict[str, Any]) -> None: ...

    ((call,),) = (subscriber.calls for subscriber in broker.subscribers)
    assert threaded_calls(call) == []


def test_no_handler_takes_a_context_parameter() -> None:
    found = context_parameters_of_handlers()
    assert sorted(found) == sorted(SERVICES)
    for service, handlers in found.items():
        assert handlers, f"{service} registered no handlers"
        assert {name: params for name, params in handlers.items() if params} == {}, service


async def test_current_delivery_is_the_message_being_handled() -> None:
    broker = RabbitBroker()
    seen: list[Any] = []

    @broker.subscriber("signatures-test")
    async def handle(body: dict[str, Any]) -> None:
        seen.append(current_delivery(broker))

    async with TestRabbitBroker(broker) as br:
        await br.publish({"x": 1}, "signatures-test", message_id="m-1")
    assert [m.message_id for m in seen] == ["m-1"]
    with pytest.raises(RuntimeError, match="outside a message handler"):
        current_delivery(broker)
