"""The AsyncAPI document covers every contract, is self-consistent and is kept up to date.

After a contract change, regenerate it with ``make asyncapi`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.asyncapi import build_document
from shared.contracts import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_document()


def _refs(node: Any, path: str = "#") -> list[tuple[str, str]]:
    """Every ``$ref`` in ``node`` with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append((path, node["$ref"]))
        for key, value in node.items():
            found += _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _refs(value, f"{path}/{i}")
    return found


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def test_document_is_asyncapi_3(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"].startswith("3.0")
    assert doc["defaultContentType"] == "application/json"
    assert set(doc) >= {"info", "channels", "operations", "components"}


@pytest.mark.parametrize("schema", sorted(REGISTRY))
def test_every_contract_has_a_message_channel_and_operation(
    doc: dict[str, Any], schema: str
) -> None:
    cls = REGISTRY[schema]
    message = doc["components"]["messages"][schema]
    assert message["payload"] == {"$ref": f"#/components/schemas/{schema}"}
    assert doc["components"]["schemas"][schema]["title"] == cls.__name__
    channel = doc["channels"][cls.routing_key()]
    assert channel["address"] == cls.routing_key()
    assert channel["messages"][schema] == {"$ref": f"#/components/messages/{schema}"}
    exchange = channel["bindings"]["amqp"]["exchange"]
    assert exchange["name"] == cls.exchange()
    assert exchange["type"] == "topic" and exchange["durable"] is True
    operations = [
        op
        for op in doc["operations"].values()
        if {"$ref": f"#/channels/{cls.routing_key()}/messages/{schema}"} in op["messages"]
    ]
    assert len(operations) == 1, f"{schema}: {len(operations)} operations"


def test_payload_is_the_whole_envelope(doc: dict[str, Any]) -> None:
    envelope = doc["components"]["schemas"]["planner.plan_course.v1"]
    assert {
        "message_id",
        "job_id",
        "correlation_id",
        "causation_id",
        "tenant_id",
        "user_id",
    } <= set(envelope["properties"])
    assert {"schema", "occurred_at", "payload"} <= set(envelope["properties"])
    assert envelope["properties"]["payload"]["$ref"].startswith("#/components/schemas/")


def test_every_ref_resolves_and_no_defs_remain(doc: dict[str, Any]) -> None:
    refs = _refs(doc)
    assert len(refs) > 3 * len(REGISTRY)
    for where, ref in refs:
        assert _resolve(doc, ref) is not None, where
    assert "$defs" not in json.dumps(doc)


def test_commands_are_sent_and_events_received(doc: dict[str, Any]) -> None:
    for name, operation in doc["operations"].items():
        channel = _resolve(doc, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"), name
            cls = REGISTRY[ref["$ref"].rsplit("/", 1)[1]]
            expected = "send" if cls.KIND == "command" else "receive"
            assert operation["action"] == expected, f"{name}: {cls.SCHEMA} is a {cls.KIND}"
            exchange = COMMANDS_EXCHANGE if cls.KIND == "command" else EVENTS_EXCHANGE
            assert channel["bindings"]["amqp"]["exchange"]["name"] == exchange
    kinds = {cls.KIND for cls in REGISTRY.values()}
    assert kinds == {"command", "event"}


def test_description_explains_the_envelope_and_delivery(doc: dict[str, Any]) -> None:
    text = doc["info"]["description"]
    for word in (
        "message_id",
        "idempotency",
        "job_id",
        "correlation_id",
        "causation_id",
        "tenant_id",
        "user_id",
        "`schema`",
        "occurred_at",
        "payload",
        COMMANDS_EXCHANGE,
        EVENTS_EXCHANGE,
        "at-least-once",
        "job.failed",
        "retryable",
        "Unknown fields are ignored",
    ):
        assert word in text, word


def test_module_prints_the_document() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shared.asyncapi"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    ).stdout
    assert json.loads(out) == json.loads(json.dumps(build_document()))


def test_committed_document_is_up_to_date(doc: dict[str, Any]) -> None:
    assert DOCUMENT.exists(), "docs/asyncapi.json is missing: run `make asyncapi`"
    committed = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(doc)), (
        "docs/asyncapi.json is out of date with the contracts: run `make asyncapi` and review"
    )
