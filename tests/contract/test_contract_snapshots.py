"""Every message contract has a JSON-schema snapshot: a contract change is a visible diff.

After an intended change, refresh with ``LECTERN_UPDATE_SNAPSHOTS=1 make unit`` and
review the diff. A breaking change needs a new version (``.v2``), not an edited v1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared.contracts import REGISTRY

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("schema", sorted(REGISTRY))
def test_contract_matches_snapshot(schema: str) -> None:
    current = REGISTRY[schema].model_json_schema(by_alias=True)
    path = SNAPSHOTS / f"{schema}.json"
    if os.environ.get("LECTERN_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no snapshot for {schema}: run with LECTERN_UPDATE_SNAPSHOTS=1"
    assert json.loads(path.read_text()) == current, f"{schema} changed: review and update"


def test_every_snapshot_has_a_contract() -> None:
    stale = {p.stem for p in SNAPSHOTS.glob("*.json")} - set(REGISTRY)
    assert not stale, f"snapshots without a contract (removed a version?): {stale}"


@pytest.mark.parametrize("schema", sorted(REGISTRY))
def test_payload_fields_are_documented(schema: str) -> None:
    payload = REGISTRY[schema].model_fields["payload"].annotation
    undocumented = [n for n, f in payload.model_fields.items() if not f.description]
    assert not undocumented, f"{schema}: fields without a description: {undocumented}"


@pytest.mark.parametrize("schema", sorted(REGISTRY))
def test_schema_names_its_routing_key_and_version(schema: str) -> None:
    cls = REGISTRY[schema]
    assert schema.startswith(cls.routing_key() + ".v")
    assert cls.routing_key().count(".") == 1
