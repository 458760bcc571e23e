"""Benchmark: what a context parameter (``msg: RabbitMessage``) costs a message handler.

FastStream hands a handler its message as a ``Context`` field, and fast-depends resolves
such fields for every message with a synchronous call in a worker thread. This publishes
``--messages`` messages through a real RabbitMQ to a handler that takes the message as a
parameter, then to one that reads it with ``shared.broker.current_delivery`` (what every
Lectern handler does; ``tests/unit/test_handler_signatures.py`` keeps it so), each twice,
and prints the CPU per message (publish and consume, this process) and the wall time.

    .venv/bin/python bench/handler_context.py --messages 3000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faststream.rabbit import RabbitBroker, RabbitMessage, RabbitQueue  # noqa: E402

from shared.broker import current_delivery  # noqa: E402
from shared.settings import LecternSettings  # noqa: E402


async def one_run(url: str, messages: int, *, parameter: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to publish and consume ``messages``."""
    broker = RabbitBroker(url, logger=None)
    queue = RabbitQueue(f"bench.handler-context.{uuid.uuid4().hex[:8]}", auto_delete=True)
    done = asyncio.Event()
    tags: list[int] = []

    def seen(msg: RabbitMessage) -> None:
        tags.append(msg.raw_message.delivery_tag or 0)
        if len(tags) == messages:
            done.set()

    if parameter:

        @broker.subscriber(queue)
        async def with_parameter(body: dict[str, Any], msg: RabbitMessage) -> None:
            seen(msg)

    else:

        @broker.subscriber(queue)
        async def with_current_delivery(body: dict[str, Any]) -> None:
            seen(current_delivery(broker))

    await broker.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(messages):
        await broker.publish({"i": i}, queue)
    await asyncio.wait_for(done.wait(), timeout=120)
    spent = time.process_time() - cpu, time.perf_counter() - wall
    await broker.stop()
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    print(f"{args.messages} messages per run, published with confirms and consumed, one process")
    for parameter in (True, False, True, False):
        cpu, wall = await one_run(LecternSettings().amqp_url, args.messages, parameter=parameter)
        how = "msg: RabbitMessage parameter" if parameter else "current_delivery(broker)   "
        print(
            f"{how}  {cpu / args.messages * 1e6:5.0f} us CPU per message, "
            f"{args.messages / wall:6.0f} messages/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
