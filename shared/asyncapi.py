"""The AsyncAPI 3.0 document of Lectern's whole broker contract, built from the contracts.

Every message type registered in :data:`shared.contracts.REGISTRY` becomes a message
whose payload is its envelope's JSON schema; each routing key is a channel on its topic
exchange. Operations are written from the side of an internal system integrating with
Lectern: it *sends* commands and *receives* events.

``python -m shared.asyncapi`` prints the document (``make asyncapi`` writes it to
``docs/asyncapi.json``); the gateway can serve :func:`build_document`.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from shared.contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, REGISTRY, Message

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
AMQP_BINDING_VERSION = "0.3.0"
_DEFS_PREFIX = "#/$defs/"
_SCHEMAS_PREFIX = "#/components/schemas/"

DESCRIPTION = f"""\
Lectern's broker contract: the commands an internal system may send to Lectern's services
over RabbitMQ, and the events they publish.

## Exchanges and routing keys

- `{COMMANDS_EXCHANGE}` (topic, durable): commands, routing key `<service>.<command>`
  (e.g. `planner.plan_course`). Each service consumes its commands from its own durable
  queue. Publish commands persistent (delivery mode 2) and `mandatory`, with publisher
  confirms: a command no queue takes is returned rather than lost.
- `{EVENTS_EXCHANGE}` (topic, durable): events, routing key `<subject>.<event>`
  (e.g. `course.ready`). To receive events, bind your own durable queue with the routing
  keys (or patterns such as `course.*`) you need.

The routing key is the message type without its version; the version is in the body's
`schema` field. A breaking change is a new version (`.v2`) published beside v1 until
consumers move, so dispatch on `schema`, not on the routing key alone.

## The envelope

Every message is a JSON object (`application/json`, UTF-8) with these fields and a
type-specific `payload`:

- `message_id`: unique id of the message and the **idempotency key**: record it and skip a
  message whose id you have already handled. The AMQP `message_id` property carries it too.
- `job_id`: the job a client watches (`GET /v1/jobs/{{job_id}}/events` on the gateway).
- `correlation_id`: ties every message of one request together. Choose it when you send a
  command; **every event caused by that command echoes it** (also in the AMQP
  `correlation_id` property), so you can match events to your request.
- `causation_id`: `message_id` of the message that caused this one (null for a first command).
- `tenant_id`: the tenant the work belongs to (`default` unless multi-tenant).
- `user_id`: the user on whose behalf the work runs, or null.
- `schema`: message type and version, e.g. `planner.plan_course.v1`.
- `occurred_at`: when the producer created the message (ISO 8601, UTC).
- `payload`: the type-specific body described by each message below.

## Delivery guarantees

Delivery is **at-least-once**: a message can arrive more than once (after a retry, a
redelivery or a producer's outbox re-publish), so consumers must be idempotent on
`message_id`. Order is not guaranteed across routing keys.

## Failures

A command that cannot be handled is retried a bounded number of times with backoff; when
the retries are exhausted, or at once for input that can never succeed, the service
publishes `job.failed` with the same `job_id` and `correlation_id`: `reason` says what failed
in words a person can act on, and `retryable` says whether sending the same request again
may succeed.

## Compatibility

Unknown fields are ignored: Lectern's consumers ignore fields they do not know, and yours
should too, because a producer may add fields to a version without making a new one. Do not
reject a message for having more fields than described here.
"""


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a JSON-ready dict) of every registered message type."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for schema_id in sorted(REGISTRY):
        cls = REGISTRY[schema_id]
        schemas[schema_id] = _collect_schema(cls, schemas)
        messages[schema_id] = _message(cls)
        key = cls.routing_key()
        channel = channels.setdefault(key, _channel(cls))
        channel["messages"][schema_id] = {"$ref": f"#/components/messages/{schema_id}"}
        action = "send" if cls.KIND == "command" else "receive"
        operation = operations.setdefault(f"{action}.{key}", _operation(cls, action))
        operation["messages"].append({"$ref": f"#/channels/{key}/messages/{schema_id}"})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Lectern broker contract",
            "version": DOCUMENT_VERSION,
            "description": DESCRIPTION,
            "tags": [
                {"name": "command", "description": f"Sent to `{COMMANDS_EXCHANGE}`."},
                {"name": "event", "description": f"Published on `{EVENTS_EXCHANGE}`."},
            ],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ as `make run` starts it (virtual host `/`).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def _collect_schema(cls: type[Message], schemas: dict[str, Any]) -> dict[str, Any]:
    """``cls``'s envelope schema with its ``$defs`` moved into ``schemas``, refs rewritten.

    Two contracts may share a definition (``ModuleSpec``); a name already taken by a
    different definition gets the message type as a suffix, so nothing is overwritten.
    """
    schema = cls.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.pop("$defs", {})
    renames = {name: name for name in defs}
    changed = True
    while changed:  # a renamed definition changes the ones referring to it: repeat
        changed = False
        for name, definition in defs.items():
            taken = schemas.get(name)
            if renames[name] == name and taken not in (None, _rewrite_refs(definition, renames)):
                renames[name] = f"{name}.{cls.SCHEMA}"
                changed = True
    for name, definition in defs.items():
        schemas[renames[name]] = _rewrite_refs(definition, renames)
    return _rewrite_refs(schema, renames)


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """A copy of ``node`` with every ``#/$defs/X`` ref pointing into components/schemas."""
    if isinstance(node, dict):
        out = {k: _rewrite_refs(v, renames) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            name = ref.removeprefix(_DEFS_PREFIX)
            out["$ref"] = _SCHEMAS_PREFIX + renames.get(name, name)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _summary(cls: type[Message]) -> str:
    doc = inspect.getdoc(cls) or cls.DESCRIPTION or cls.SCHEMA
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _message(cls: type[Message]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": cls.__name__,
        "title": cls.SCHEMA,
        "summary": _summary(cls),
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMAS_PREFIX + cls.SCHEMA},
        "correlationId": {
            "description": "Set by the request's sender; every event it causes echoes it.",
            "location": "$message.payload#/correlation_id",
        },
        "tags": [{"name": cls.KIND}, {"name": cls.routing_key().split(".", 1)[0]}],
    }
    description = inspect.getdoc(cls) or ""
    if description.replace("\n", " ") != message["summary"]:
        message["description"] = description
    return message


def _channel(cls: type[Message]) -> dict[str, Any]:
    kind = "Commands" if cls.KIND == "command" else "Events"
    return {
        "address": cls.routing_key(),
        "title": cls.routing_key(),
        "description": f"{kind} with routing key `{cls.routing_key()}` on `{cls.exchange()}`.",
        "messages": {},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": cls.exchange(),
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _operation(cls: type[Message], action: str) -> dict[str, Any]:
    key = cls.routing_key()
    if action == "send":
        summary = f"Send `{key}` to `{cls.exchange()}`: {_summary(cls)}"
        bindings = {"deliveryMode": 2, "mandatory": True}
    else:
        summary = f"Receive `{key}` from `{cls.exchange()}`: {_summary(cls)}"
        bindings = {"ack": True}
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{key}"},
        "summary": summary,
        "messages": [],
        "bindings": {"amqp": bindings | {"bindingVersion": AMQP_BINDING_VERSION}},
    }


def main() -> None:
    """Print the document as JSON (stable: sorted keys, two-space indent)."""
    print(json.dumps(build_document(), indent=2, sort_keys=True, ensure_ascii=False))


if __name__ == "__main__":
    main()
