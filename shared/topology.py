"""Broker topology: exchanges, queues, dead-lettering and retry queues.

- ``lectern.commands`` (topic): routing key ``<service>.<command>``; one durable quorum
  queue per service, ``<service>.commands``, bound with ``<service>.*``.
- ``lectern.events`` (topic): routing key ``<subject>.<event>``; each subscriber binds
  its own durable quorum queue (``gateway.event-log``, ``assessment.on-lesson-written``).
- ``lectern.dead-letter`` (direct): every durable queue ``Q`` dead-letters into
  ``Q.dlq`` (routing key ``Q``). Our retry middleware publishes there with the reason
  after the last attempt; the broker does too when a quorum queue's delivery limit is
  hit (a process that crashes on a message, so our code never sees it fail).
- ``Q.retry``: a classic queue holding a failed message for its backoff (per-message
  TTL), then dead-lettering it back to ``Q`` through the default exchange.
- RPC: ``<service>.rpc.<query>`` on ``lectern.commands``, answered over direct reply-to.
"""

from __future__ import annotations

from typing import Any

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared.contracts.base import COMMANDS_EXCHANGE, EVENTS_EXCHANGE

DEAD_LETTER_EXCHANGE = "lectern.dead-letter"
GATEWAY_LIVE_EXCHANGE = "lectern.gateway.live"
# A safety net below our own attempt counting: a message that kills its consumer
# process never reaches the retry middleware, so the broker must stop it.
BROKER_DELIVERY_LIMIT = 10

commands_exchange = RabbitExchange(COMMANDS_EXCHANGE, type=ExchangeType.TOPIC, durable=True)
events_exchange = RabbitExchange(EVENTS_EXCHANGE, type=ExchangeType.TOPIC, durable=True)
dead_letter_exchange = RabbitExchange(DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True)
gateway_live_exchange = RabbitExchange(
    GATEWAY_LIVE_EXCHANGE, type=ExchangeType.FANOUT, durable=True
)


def dlq_name(queue: str) -> str:
    """Name of the dead-letter queue of ``queue``."""
    return f"{queue}.dlq"


def retry_queue_name(queue: str) -> str:
    """Name of the backoff queue of ``queue``."""
    return f"{queue}.retry"


def _durable_args(name: str) -> dict[str, Any]:
    return {
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": name,
        "x-delivery-limit": BROKER_DELIVERY_LIMIT,
    }


def durable_queue(name: str, routing_key: str, *, ordered: bool = False) -> RabbitQueue:
    """A durable quorum queue with dead-lettering, bound with ``routing_key``.

    ``ordered``: one consumer at a time (single active consumer), for consumers that
    must see messages in queue order even with several replicas.
    """
    arguments = _durable_args(name)
    if ordered:
        arguments["x-single-active-consumer"] = True
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        arguments=arguments,  # type: ignore[arg-type]
        routing_key=routing_key,
    )


def command_queue(service: str) -> RabbitQueue:
    """The service's command queue, ``<service>.commands``, bound to ``<service>.*``."""
    return durable_queue(f"{service}.commands", f"{service}.*")


def event_queue(name: str, routing_key: str, *, ordered: bool = False) -> RabbitQueue:
    """A subscriber's own durable queue on ``lectern.events``."""
    return durable_queue(name, routing_key, ordered=ordered)


def rpc_queue(service: str) -> RabbitQueue:
    """Queue for ``<service>.rpc.*`` queries: answers are useless later, so no retry/DLQ."""
    return RabbitQueue(
        f"{service}.rpc",
        durable=False,
        auto_delete=True,
        routing_key=f"{service}.rpc.*",
        arguments={"x-message-ttl": 30_000},
    )


def dead_letter_queue(queue: str) -> RabbitQueue:
    """The DLQ of ``queue``: durable, kept until someone inspects or replays it."""
    return RabbitQueue(
        dlq_name(queue),
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=queue,
    )


def retry_queue(queue: str) -> RabbitQueue:
    """Backoff queue: messages wait out their TTL, then go back to ``queue``."""
    return RabbitQueue(
        retry_queue_name(queue),
        durable=True,
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue,
        },
    )


async def declare_failure_path(broker: Any, queue: str) -> None:
    """Declare ``queue``'s DLQ (bound to the dead-letter exchange) and retry queue."""
    dlx = await broker.declare_exchange(dead_letter_exchange)
    dlq = await broker.declare_queue(dead_letter_queue(queue))
    await dlq.bind(dlx, routing_key=queue)
    await broker.declare_queue(retry_queue(queue))


async def declare_command_queue(broker: Any, service: str) -> None:
    """Declare and bind ``<service>.commands`` with its failure path.

    Publishers call this for the services they send to, so a command sent while its
    service is down waits in the queue instead of being unroutable.
    """
    exchange = await broker.declare_exchange(commands_exchange)
    spec = command_queue(service)
    queue = await broker.declare_queue(spec)
    await queue.bind(exchange, routing_key=spec.routing_key)
    await declare_failure_path(broker, spec.name)
