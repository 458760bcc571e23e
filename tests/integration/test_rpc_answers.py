"""RPC over the real RabbitMQ: answers arrive, and answering logs no error.

RabbitMQ returns a mandatory publish to a direct reply-to queue as unroutable
(NO_ROUTE) although it delivers it; with the broker's ``on_return_raises`` every answer
was logged as a failed publish, with its traceback, on the answering service."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from shared import rpc
from shared.broker import make_broker
from shared.settings import LecternSettings

pytestmark = pytest.mark.integration


async def test_answers_arrive_and_the_answering_side_logs_no_error(
    infra: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    server = rpc.RpcServer("rpcprobe")

    @server.query("echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"echo": body["x"]}

    @server.query("missing")
    async def missing(body: dict[str, Any]) -> Any:
        raise rpc.not_found("thing 7")

    answering = make_broker(LecternSettings(service_name="rpcprobe", amqp_url=infra["AMQP_URL"]))
    asking = make_broker(LecternSettings(service_name="asker", amqp_url=infra["AMQP_URL"]))
    server.attach(answering)
    caplog.set_level(logging.WARNING)
    async with answering, asking:
        await answering.start()
        await asking.start()
        assert await rpc.request(asking, "rpcprobe", "echo", {"x": 1}) == {"echo": 1}
        with pytest.raises(rpc.RpcError) as refused:
            await rpc.request(asking, "rpcprobe", "missing", {})
        assert (refused.value.status, refused.value.detail) == (404, "thing 7 not found")
        answers = await asyncio.gather(
            *(rpc.request(asking, "rpcprobe", "echo", {"x": i}) for i in range(20))
        )
        assert answers == [{"echo": i} for i in range(20)]
        await asyncio.sleep(0.3)  # a returned publish is reported after its confirm
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage()[:200] for r in errors]
