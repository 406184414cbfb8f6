"""The Bus contract (``parley.bus.base``), run against every backend:

- ``memory``: the in-process bus;
- ``redis``: a Redis bus receiving what *another node's* Redis bus publishes (the path
  between nodes, through Redis pub/sub);
- ``redis-self``: a Redis bus receiving its own envelopes (delivered locally at publish;
  the echo from Redis must not make a second copy).

A networked bus delivers asynchronously, so tests wait for what must arrive, and prove
that something did *not* arrive with a barrier: an envelope published after it by the same
publisher on another topic — publisher order means it would have come first.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from parley.bus import (
    Bus,
    Envelope,
    InProcessBus,
    MembershipAction,
    MembershipChange,
    conversation_topic,
    topics_of,
    user_topic,
)
from parley.bus.redis import RedisBus
from parley.bus.redis import redis_bus as bus_for
from parley.redis_urls import RedisTopology
from tests.support.bus_envelopes import envelope
from tests.support.redis_fixtures import REDIS_URL, TOPOLOGY

WAIT = 5.0
BARRIER = "barrier"


@dataclass
class Node:
    """The bus under test, whoever publishes to it, and what its handler received."""

    bus: Bus
    publisher: Bus
    received: list[Envelope]
    _barriers: int = 0

    async def wait_for(self, predicate: Callable[[list[Envelope]], bool]) -> None:
        async def satisfied() -> None:
            while not predicate(self.received):
                await asyncio.sleep(0.002)

        try:
            await asyncio.wait_for(satisfied(), WAIT)
        except TimeoutError:
            raise AssertionError(f"not received in time: {[e.id for e in self.received]}")

    async def settle(self) -> None:
        """Everything the publisher published so far has arrived (or never will)."""
        self._barriers += 1
        marker = f"barrier-{self._barriers}"
        await self.bus.subscribe(conversation_topic(BARRIER))
        await self.publisher.publish(envelope(0, conversation=BARRIER, id=marker))
        await self.wait_for(lambda received: any(e.id == marker for e in received))
        await self.bus.unsubscribe(conversation_topic(BARRIER))
        self.received[:] = [e for e in self.received if e.conversation_id != BARRIER]

    def ids(self) -> list[str]:
        return [e.id for e in self.received]


def redis_bus(prefix: str) -> RedisBus:
    return bus_for(REDIS_URL, prefix=prefix, node_id=secrets.token_hex(4))


async def close_redis_bus(bus: RedisBus) -> None:
    await bus.close()
    await bus.aclose_clients()


@pytest.fixture(params=["memory", "redis", "redis-self"])
def kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend and, for Redis, a key prefix of this test's own. Synchronous, so that
    it can pick the async Redis fixtures at run time (skipping loudly without Redis)."""
    if request.param == "memory":
        return request.param, ""
    prefix: str = request.getfixturevalue("redis_prefix")
    return request.param, prefix


@pytest.fixture
async def node(kind: tuple[str, str]) -> AsyncIterator[Node]:
    name, prefix = kind
    received: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)

    if name == "memory":
        memory = InProcessBus()
        await memory.start(handler)
        yield Node(memory, memory, received)
        await memory.close()
        return
    bus = redis_bus(prefix)
    await bus.start(handler)
    other = redis_bus(prefix) if name == "redis" else None
    if other is not None:

        async def ignore(envelope: Envelope) -> None:
            pass

        await other.start(ignore)
    try:
        yield Node(bus, other or bus, received)
    finally:
        await close_redis_bus(bus)
        if other is not None:
            await close_redis_bus(other)


async def test_only_subscribed_topics_are_delivered(node: Node) -> None:
    await node.publisher.publish(envelope(1))
    await node.settle()
    assert node.received == []
    await node.bus.subscribe(conversation_topic("c1"))
    await node.publisher.publish(envelope(2))
    await node.publisher.publish(envelope(3, conversation="c2"))
    await node.settle()
    assert node.ids() == ["e2"]


async def test_subscriptions_are_reference_counted(node: Node) -> None:
    topic = conversation_topic("c1")
    await node.bus.subscribe(topic)
    await node.bus.subscribe(topic)
    assert node.bus.subscription_count() == 1
    await node.bus.unsubscribe(topic)
    await node.publisher.publish(envelope(1))
    await node.wait_for(lambda received: len(received) == 1)
    await node.bus.unsubscribe(topic)
    await node.publisher.publish(envelope(2))
    await node.bus.unsubscribe(topic)  # one too many: ignored
    assert node.bus.subscription_count() == 0
    await node.settle()
    assert node.ids() == ["e1"]


async def test_once_per_node_even_on_several_topics(node: Node) -> None:
    for topic in (conversation_topic("c1"), user_topic("u1"), user_topic("u2")):
        await node.bus.subscribe(topic)
    await node.publisher.publish(envelope(1, users=("u1", "u2")))
    await node.publisher.publish(envelope(2, conversation=None, users=("u2",)))
    await node.wait_for(lambda received: len(received) >= 2)
    await node.settle()
    assert node.ids() == ["e1", "e2"]


async def test_publisher_order_is_kept(node: Node, kind: tuple[str, str]) -> None:
    name = kind[0]
    await node.bus.subscribe(conversation_topic("c1"))
    await node.bus.subscribe(user_topic("u1"))
    for number in range(200):
        # Mixed topics: order holds across a publisher's topics, not only within one.
        if number % 3:
            await node.publisher.publish(envelope(number))
        else:
            await node.publisher.publish(envelope(number, conversation=None, users=("u1",)))
    await node.wait_for(lambda received: len(received) >= 200)
    if name != "memory" and TOPOLOGY is RedisTopology.CLUSTER:
        # Sharded pub/sub keeps order per topic: c1 and u1 may live on different shards.
        ids = node.ids()
        assert [i for i in ids if int(i[1:]) % 3] == [f"e{n}" for n in range(200) if n % 3]
        assert [i for i in ids if not int(i[1:]) % 3] == [f"e{n}" for n in range(0, 200, 3)]
    else:
        assert node.ids() == [f"e{n}" for n in range(200)]


async def test_closed_bus_delivers_nothing(node: Node) -> None:
    await node.bus.subscribe(conversation_topic("c1"))
    await node.bus.close()
    await node.publisher.publish(envelope(1))
    flush = getattr(node.publisher, "flush", None)
    if flush is not None:
        await flush()  # handed to Redis: a live subscriber would have it now
    assert node.received == []


def test_envelope_round_trip_and_topics() -> None:
    original = Envelope(
        id="e1",
        type="member.added",
        frame='{"op":"event","type":"member.added","data":{"text":"héllo"}}',
        conversation_id="c1",
        user_ids=("u1", "u2"),
        membership=MembershipChange(MembershipAction.JOIN, "c1", ("u2",)),
    )
    assert Envelope.decode(original.encode()) == original
    assert topics_of(original) == ["user:u1", "user:u2", "conversation:c1"]
    plain = envelope(7, conversation=None, users=("u9",))
    assert Envelope.decode(plain.encode()) == plain
