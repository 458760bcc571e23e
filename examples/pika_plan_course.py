"""Drive Lectern from any system with a plain AMQP client: pika, no Lectern code.

    python examples/pika_plan_course.py --amqp amqp://guest:guest@127.0.0.1:5672/ \\
        --topic "SQL window functions" --level advanced --hours 6

What it does, which is all an internal system needs:

1. Declares its own queue and binds it to the topic exchange ``lectern.events`` for the
   job-level events, *before* publishing, so no event can be missed. (A production
   consumer would use a durable, named queue, e.g. ``lms.lectern-events``, so events
   wait for it while it is down.)
2. Publishes one ``planner.plan_course.v1`` command to ``lectern.commands`` with routing
   key ``planner.plan_course``: persistent, ``mandatory`` and with publisher confirms,
   so it returns only when RabbitMQ has taken it and fails when nothing is bound.
   ``auto_finalize`` runs the whole course: plan, lessons, quizzes, exercises.
3. Prints its events (same ``job_id`` and ``correlation_id``) until ``course.ready``
   or ``job.failed``.

Exit codes: 0 course ready, 1 job failed, 3 broker unreachable or command unroutable,
7 no event within --idle-timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import pika
from pika.exceptions import AMQPConnectionError, NackError, UnroutableError

COMMANDS = "lectern.commands"
EVENTS = "lectern.events"
# the job-level events (not llm.call_completed / prompt.activated); job.* has the
# streamed text (job.chunk) and job.failed
BINDINGS = ("course.*", "lesson.*", "assessment.*", "exercise.*", "job.*")
FINAL = {"course.ready", "job.failed"}


def command(args: argparse.Namespace) -> dict:
    """The plan_course envelope (shared/contracts/base.py, planner.py)."""
    job_id = str(uuid.uuid4())
    return {
        "message_id": str(uuid.uuid4()),  # the idempotency key: resend it, not a new one
        "job_id": job_id,
        "correlation_id": args.correlation_id or job_id,
        "tenant_id": args.tenant,
        "schema": "planner.plan_course.v1",
        "payload": {
            "course_id": str(uuid.uuid4()),
            "topic": args.topic,
            "level": args.level,
            "duration_hours": args.hours,
            "language": "en",
            "auto_finalize": True,
        },
    }


def describe(body: dict) -> str:
    """One line per event."""
    name = body["schema"].rsplit(".v", 1)[0]
    p = body.get("payload", {})
    if name == "course.plan_finalized":
        return f"{name}: {p['title']!r}, {len(p['modules'])} modules"
    if name == "lesson.written":
        return f"{name}: lesson {p['order']} {p['title']!r}"
    if name == "assessment.ready":
        return f"{name}: lesson {p['order']} quiz {p['quiz_id']}"
    if name == "course.progress":
        return f"{name}: {p['done']}/{p['total']}"
    if name == "course.ready":
        return f"{name}: course {p['course_id']} {p['title']!r}"
    if name == "job.failed":
        return f"{name}: {p['reason']}"
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topic", default="Negotiation skills")
    parser.add_argument("--level", default="beginner")
    parser.add_argument("--hours", type=float, default=4)
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--correlation-id")
    parser.add_argument("--idle-timeout", type=float, default=300)
    args = parser.parse_args()

    try:
        connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
    except AMQPConnectionError as exc:
        print(f"cannot reach RabbitMQ: {exc!r}", file=sys.stderr)
        return 3
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # publisher confirms: basic_publish waits for the ack

        # 1. our queue, bound before the command goes out
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        for key in BINDINGS:
            channel.queue_bind(queue, EVENTS, routing_key=key)

        # 2. the command
        body = command(args)
        try:
            channel.basic_publish(
                COMMANDS,
                "planner.plan_course",
                json.dumps(body).encode(),
                pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=body["message_id"],
                    correlation_id=body["correlation_id"],
                ),
                mandatory=True,
            )
        except UnroutableError:
            print("unroutable: no planner queue is bound on this vhost", file=sys.stderr)
            return 3
        except NackError:
            print("the broker refused the command", file=sys.stderr)
            return 1
        print(f"published plan_course: job {body['job_id']}", flush=True)

        # 3. the events of our job
        last = time.monotonic()
        for method, _props, raw in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:  # nothing for a second
                if time.monotonic() - last > args.idle_timeout:
                    print(f"no event for {args.idle_timeout:g} s", file=sys.stderr)
                    return 7
                continue
            channel.basic_ack(method.delivery_tag)
            event = json.loads(raw)
            if event.get("job_id") != body["job_id"]:
                continue  # another job's
            last = time.monotonic()
            name = event["schema"].rsplit(".v", 1)[0]
            if name == "job.chunk":
                continue  # streamed text: print(event["payload"]["text"], end="") to show it
            print(describe(event), flush=True)
            if name in FINAL:
                return 0 if name == "course.ready" else 1
        return 1
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
