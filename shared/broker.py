"""The broker factory: confirms on, unroutable publishes raise, telemetry and metrics."""

from __future__ import annotations

import logging
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage, RabbitRouter
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import REGISTRY, CollectorRegistry

from shared.frames import tolerate_malformed_frames
from shared.messaging import retry_middleware
from shared.settings import LecternSettings
from shared.telemetry import setup_tracing
from shared.wire import decode_envelope, parse_delivery

_prometheus: dict[int, RabbitPrometheusMiddleware] = {}


def _prometheus_middleware(registry: CollectorRegistry) -> RabbitPrometheusMiddleware:
    # FastStream registers its metrics when the middleware is built: one per registry,
    # or a second broker in the same process (tests) would register them twice.
    key = id(registry)
    if key not in _prometheus:
        _prometheus[key] = RabbitPrometheusMiddleware(registry=registry, app_name="lectern")
    return _prometheus[key]


def make_broker(settings: LecternSettings, **kwargs: Any) -> RabbitBroker:
    """A RabbitBroker for one service.

    Publisher confirms are on and a mandatory publish that no queue takes raises
    (FastStream's default ``on_return_raises=False`` would drop it silently).
    """
    tolerate_malformed_frames()  # a malformed header frame must not close the connection
    provider = setup_tracing(settings.service_name, settings.otlp_endpoint)
    return RabbitBroker(
        settings.amqp_url,
        default_channel=Channel(
            prefetch_count=settings.prefetch,
            publisher_confirms=True,
            on_return_raises=True,
        ),
        app_id=f"lectern-{settings.service_name}",
        parser=parse_delivery,
        middlewares=[
            RabbitTelemetryMiddleware(tracer_provider=provider),
            _prometheus_middleware(REGISTRY),
        ],
        logger=logging.getLogger(f"lectern.{settings.service_name}.broker"),
        graceful_timeout=30.0,
        **kwargs,
    )


def current_delivery(broker: RabbitBroker) -> RabbitMessage:
    """The message the running handler of ``broker`` was given.

    Handlers call this instead of taking a parameter annotated ``RabbitMessage``: such a
    parameter is a FastStream ``Context`` field, which fast-depends resolves for every
    message by a synchronous call in a worker thread (about 0.3 ms of CPU and a thread
    hop per message; ``tests/unit/test_handler_signatures.py`` keeps them out)."""
    message = broker.context.get_local("message")
    if message is None:
        raise RuntimeError("current_delivery() called outside a message handler")
    return message  # type: ignore[no-any-return]


def durable_router(queue: str, settings: LecternSettings) -> RabbitRouter:
    """A router whose subscribers retry with backoff and dead-letter ``queue``'s messages.

    Bodies are decoded by :func:`shared.wire.decode_envelope` (a JSON object, or a
    permanent error naming what is wrong). Errors raised past the retry middleware (the
    broker itself failing) nack with requeue, never reject: a reject would dead-letter
    a message that did nothing wrong.
    """
    return RabbitRouter(
        middlewares=[
            retry_middleware(
                queue,
                max_attempts=settings.max_attempts,
                base_delay_ms=settings.retry_base_delay_ms,
                service=settings.service_name,
                max_message_bytes=settings.max_message_bytes,
            )
        ],
        decoder=decode_envelope,
    )


DURABLE_ACK = AckPolicy.NACK_ON_ERROR
