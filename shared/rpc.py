"""Queries between services: RPC over RabbitMQ direct reply-to.

A service answers ``<service>.rpc.<query>`` on ``lectern.commands`` (one queue per
service, ``<service>.rpc``, shared by its replicas). Answers are envelopes
``{"status": 200, "data": ...}`` or ``{"status": 404, "error": "..."}`` so the
caller can tell "not found" from "the service is down" (no consumer: the request
is unroutable; slow: a timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker, RabbitResponse
from pydantic import BaseModel, ValidationError

from shared.broker import current_delivery
from shared.topology import commands_exchange, rpc_queue

log = logging.getLogger("lectern.rpc")

Q = TypeVar("Q", bound=BaseModel)
RpcHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class RpcError(Exception):
    """A query was answered with an error status (404: not found or not yours)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RpcUnavailable(Exception):
    """Nobody answered: the owning service is down or too slow."""


def parse_query(model: type[Q], body: Any) -> Q:
    """A query's body as ``model``; an RpcError 400 naming the bad fields otherwise."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise RpcError(400, f"invalid query: {fields}") from exc


def not_found(what: str) -> RpcError:
    """The error for something missing, or owned by someone else (no existence leak)."""
    return RpcError(404, f"{what} not found")


class RpcServer:
    """Registers query handlers of one service and answers them on ``<service>.rpc``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.handlers: dict[str, RpcHandler] = {}

    def query(self, name: str) -> Callable[[RpcHandler], RpcHandler]:
        """Decorator: answer ``<service>.rpc.<name>`` with the handler's return value."""

        def register(handler: RpcHandler) -> RpcHandler:
            self.handlers[name] = handler
            return handler

        return register

    def attach(self, broker: RabbitBroker) -> None:
        """Subscribe the dispatcher (call once, before the broker starts)."""
        prefix = f"{self.service}.rpc."

        @broker.subscriber(rpc_queue(self.service), commands_exchange)
        async def answer(body: dict[str, Any]) -> RabbitResponse:
            # Not mandatory: RabbitMQ returns a mandatory publish to a direct reply-to
            # queue as unroutable (NO_ROUTE) although it delivered it, which the
            # broker's on_return_raises turned into an error logged for every answer.
            # An answer whose caller has gone (it timed out) is dropped either way.
            return RabbitResponse(await self._answer(broker, prefix, body), mandatory=False)

    async def _answer(self, broker: RabbitBroker, prefix: str, body: Any) -> dict[str, Any]:
        msg = current_delivery(broker)
        name = (msg.raw_message.routing_key or "").removeprefix(prefix)
        handler = self.handlers.get(name)
        if handler is None:
            return {"status": 400, "error": f"unknown query {name!r}"}
        try:
            return {"status": 200, "data": await handler(body)}
        except RpcError as exc:
            return {"status": exc.status, "error": exc.detail}
        except Exception:
            log.exception("query %s failed", name)
            return {"status": 500, "error": f"{self.service} failed to answer {name}"}


async def request(
    broker: RabbitBroker, service: str, query: str, body: dict[str, Any], *, timeout: float = 10.0
) -> Any:
    """Ask ``service`` the ``query``; return its data.

    Raises:
        RpcError: the service answered with an error status.
        RpcUnavailable: no replica of the service is consuming, or none answered in time.
    """
    try:
        response = await broker.request(
            body,
            exchange=commands_exchange,
            routing_key=f"{service}.rpc.{query}",
            timeout=timeout,
        )
    except (TimeoutError, DeliveryError) as exc:
        raise RpcUnavailable(f"{service} did not answer {query}") from exc
    answer = await response.decode()
    if not isinstance(answer, dict) or "status" not in answer:
        raise RpcUnavailable(f"{service} sent a malformed answer to {query}")
    if answer["status"] != 200:
        raise RpcError(int(answer["status"]), str(answer.get("error", "")))
    return answer.get("data")
