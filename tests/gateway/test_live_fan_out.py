"""Stored events reach this replica's streams at once and the other replicas' by broker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.gateway.handlers import LiveFanOut
from services.gateway.live import EventHub
from services.gateway.streams import StoredEvent


class Published:
    """The live exchange's publisher: records what goes out, or fails like a broker."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail = fail

    async def __call__(self, body: bytes, **_: Any) -> None:
        if self.fail:
            raise ConnectionError("the broker is away")
        self.messages.append(json.loads(body))


def batch(job_id: str, *seqs: int) -> list[StoredEvent]:
    return [StoredEvent(job_id, seq, "job.chunk", {"text": "x" * 100}) for seq in seqs]


def seqs(hub: EventHub, job_id: str) -> list[int]:
    (watcher,) = hub._watchers[job_id]
    return [e.seq for e in watcher.events]


async def test_a_stored_batch_reaches_this_replicas_streams_before_the_broker() -> None:
    hub, published = EventHub(), Published(fail=True)
    hub.watch("j", 0)
    live = LiveFanOut(hub, published, limit=10_000)
    with pytest.raises(ConnectionError):
        await live.stored(batch("j", 1, 2))
    assert seqs(hub, "j") == [1, 2]  # the broker's failure cost this replica's streams nothing


async def test_a_batch_goes_out_for_the_others_named_and_split_under_the_limit() -> None:
    hub, published = EventHub(), Published()
    live = LiveFanOut(hub, published, limit=400)
    await live.stored(batch("j", 1, 2, 3, 4))
    assert len(published.messages) > 1
    assert {m["replica"] for m in published.messages} == {live.replica}
    assert [e["seq"] for m in published.messages for e in m["events"]] == [1, 2, 3, 4]


async def test_a_replica_skips_its_own_batches_and_takes_the_others() -> None:
    ours, theirs = Published(), Published()
    hub_a, hub_b = EventHub(), EventHub()
    a, b = LiveFanOut(hub_a, ours, limit=10_000), LiveFanOut(hub_b, theirs, limit=10_000)
    hub_a.watch("j", 0)
    hub_b.watch("j", 0)
    await a.stored(batch("j", 1, 2))  # replica a stores; the live exchange reaches both
    for message in ours.messages:
        a.received(message)
        b.received(message)
    assert seqs(hub_a, "j") == [1, 2]  # not twice
    assert seqs(hub_b, "j") == [1, 2]
    # what an older replica publishes: one event, no name
    b.received({"job_id": "j", "seq": 3, "event": "job.chunk", "body": {}})
    assert seqs(hub_b, "j") == [1, 2, 3]
