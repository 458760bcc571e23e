"""Stored events reach this replica's streams at once and the other replicas' by broker,
which carries them only while another replica is there to take them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.gateway.handlers import PEER_TTL_S, LiveFanOut
from services.gateway.live import EventHub
from services.gateway.streams import StoredEvent


class Published:
    """The live exchange's publisher: records what goes out, or fails like a broker."""

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail = fail

    async def __call__(self, body: bytes | dict[str, Any], **_: Any) -> None:
        if self.fail:
            raise ConnectionError("the broker is away")
        self.messages.append(json.loads(body) if isinstance(body, bytes) else body)

    def batches(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m.get("hello")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Exchange:
    """A fanout exchange between replicas: every message reaches every replica, the
    sender's own included, in the order published."""

    def __init__(self) -> None:
        self.replicas: list[LiveFanOut] = []
        self.queue: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def replica(self, clock: Clock | None = None) -> tuple[LiveFanOut, EventHub, list[bool]]:
        """A replica on this exchange, its hub, and a record of its ``on_known`` calls."""
        hub = EventHub()
        known: list[bool] = []

        async def publish(body: bytes | dict[str, Any], **_: Any) -> None:
            message = json.loads(body) if isinstance(body, bytes) else body
            self.queue.append(message)
            self.sent.append(message)

        live = LiveFanOut(
            hub, publish, limit=10_000, on_known=lambda: known.append(True), clock=clock or Clock()
        )
        self.replicas.append(live)
        return live, hub, known

    async def settle(self) -> None:
        """Deliver until nothing more is published."""
        while self.queue:
            message = self.queue.pop(0)
            for live in self.replicas:
                await live.received(message)


def batch(job_id: str, *seqs: int) -> list[StoredEvent]:
    return [StoredEvent(job_id, seq, "job.chunk", {"text": "x" * 100}) for seq in seqs]


def seqs(hub: EventHub, job_id: str) -> list[int]:
    (watcher,) = hub._watchers[job_id]
    return [e.seq for e in watcher.events]


async def test_alone_a_replica_hands_batches_to_its_streams_and_publishes_nothing() -> None:
    hub, published = EventHub(), Published()
    hub.watch("j", 0)
    live = LiveFanOut(hub, published, limit=10_000)
    await live.stored(batch("j", 1, 2))
    assert seqs(hub, "j") == [1, 2]
    assert published.messages == []


async def test_a_stored_batch_reaches_this_replicas_streams_before_the_broker() -> None:
    hub, published = EventHub(), Published(fail=True)
    hub.watch("j", 0)
    live = LiveFanOut(hub, published, limit=10_000)
    await live.received({"replica": "other", "hello": True, "peers": [live.replica]})
    with pytest.raises(ConnectionError):
        await live.stored(batch("j", 1, 2))
    assert seqs(hub, "j") == [1, 2]  # the broker's failure cost this replica's streams nothing


async def test_a_batch_goes_out_for_the_others_named_and_split_under_the_limit() -> None:
    hub, published = EventHub(), Published()
    live = LiveFanOut(hub, published, limit=400)
    await live.received({"replica": "other", "hello": True, "peers": [live.replica]})
    await live.stored(batch("j", 1, 2, 3, 4))
    assert len(published.batches()) > 1
    assert {m["replica"] for m in published.batches()} == {live.replica}
    assert [e["seq"] for m in published.batches() for e in m["events"]] == [1, 2, 3, 4]


async def test_replicas_meet_by_hellos_then_each_skips_its_own_batches_and_takes_the_others() -> (
    None
):
    exchange = Exchange()
    a, hub_a, known_a = exchange.replica()
    b, hub_b, known_b = exchange.replica()
    hub_a.watch("j", 0)
    hub_b.watch("j", 0)
    await a.announce()  # a starts
    await b.announce()  # then b
    await exchange.settle()
    assert set(a.peers) == {b.replica} and set(b.peers) == {a.replica}
    assert known_a == [True] and known_b == [True]  # each was named new once: one check
    hellos = len(exchange.sent)
    assert hellos <= 4
    await a.stored(batch("j", 1, 2))  # replica a stores; the live exchange reaches both
    await exchange.settle()
    assert seqs(hub_a, "j") == [1, 2]  # not twice
    assert seqs(hub_b, "j") == [1, 2]
    await a.announce()  # the periodic hellos of replicas that know each other: no answers
    await b.announce()
    await exchange.settle()
    assert len(exchange.sent) == hellos + 1 + 2
    assert known_a == [True] and known_b == [True]


async def test_a_joining_replica_checks_the_log_once_the_storing_one_knows_it() -> None:
    """What the storing replica stored alone never went out; the newcomer's streams are
    told to check the log only after the storing replica has come to know it."""
    exchange = Exchange()
    a, _, _ = exchange.replica()
    await a.announce()
    await exchange.settle()
    await a.stored(batch("j", 1))  # alone: not published
    assert exchange.sent[-1]["hello"]
    b, hub_b, _ = exchange.replica()
    knew: list[bool] = []
    b.on_known = lambda: knew.append(b.replica in a.peers)
    await b.announce()
    await exchange.settle()
    assert knew == [True]
    hub_b.watch("j", 1)
    await a.stored(batch("j", 2))
    await exchange.settle()
    assert seqs(hub_b, "j") == [2]


async def test_a_replica_stops_publishing_for_one_gone_silent_and_meets_it_again() -> None:
    clock_a, clock_b = Clock(), Clock()
    exchange = Exchange()
    a, _, _ = exchange.replica(clock_a)
    b, _, known_b = exchange.replica(clock_b)
    await a.announce()
    await b.announce()
    await exchange.settle()
    clock_a.now += PEER_TTL_S + 1  # b's hellos stopped reaching a (b's connection was gone)
    sent = len(exchange.sent)
    await a.stored(batch("j", 1))
    assert len(exchange.sent) == sent  # nobody to publish for
    assert a.peers == {}
    await b.announce()  # b is back: a names it new, so b's streams check the log
    await exchange.settle()
    assert known_b == [True, True]
    assert set(a.peers) == {b.replica}
    await a.stored(batch("j", 2))
    assert exchange.sent[-1]["events"][0]["seq"] == 2


async def test_replicas_of_older_versions_count_as_there_and_take_hellos_as_empty_batches() -> None:
    hub, published = EventHub(), Published()
    hub.watch("j", 0)
    live = LiveFanOut(hub, published, limit=10_000)
    # one version old: batches with a name, no hellos
    await live.received(
        {
            "replica": "older",
            "events": [{"job_id": "j", "seq": 1, "event": "job.chunk", "body": {}}],
        }
    )
    # two versions old: one event, no name
    await live.received({"job_id": "j", "seq": 2, "event": "job.chunk", "body": {}})
    assert seqs(hub, "j") == [1, 2]
    assert set(live.peers) == {"older", "unnamed"}
    [hello] = published.messages  # the answer to the named one, which it takes as no events
    assert hello["new"] == "older" and hello["events"] == []
    await live.stored(batch("j", 3))
    assert published.batches()[-1]["events"][0]["seq"] == 3


async def test_a_replica_answers_one_that_forgot_it_without_waiting_for_its_next_hello() -> None:
    clock_a = Clock()
    exchange = Exchange()
    a, _, _ = exchange.replica(clock_a)
    b, _, known_b = exchange.replica()
    await a.announce()
    await b.announce()
    await exchange.settle()
    clock_a.now += PEER_TTL_S + 1  # a forgot b; b still knows a
    await a.announce()  # a's periodic hello, naming nobody: b answers, a names b new
    await exchange.settle()
    assert set(a.peers) == {b.replica}
    assert known_b == [True, True]
