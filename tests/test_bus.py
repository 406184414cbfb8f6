"""The Bus contract (``parley.bus.base``), run against every backend. Only the in-process
bus exists yet; a Redis bus joins ``BUSES`` and must pass the same tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

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

BUSES: dict[str, Callable[[], Bus]] = {"memory": InProcessBus}


@pytest.fixture(params=sorted(BUSES))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, list[Envelope]]]:
    instance = BUSES[request.param]()
    received: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)

    await instance.start(handler)
    try:
        yield instance, received
    finally:
        await instance.close()


def envelope(
    number: int, *, conversation: str | None = "c1", users: tuple[str, ...] = ()
) -> Envelope:
    return Envelope(
        id=f"e{number}",
        type="message.created",
        frame=f'{{"op":"event","n":{number}}}',
        conversation_id=conversation,
        user_ids=users,
    )


async def test_only_subscribed_topics_are_delivered(bus: tuple[Bus, list[Envelope]]) -> None:
    instance, received = bus
    await instance.publish(envelope(1))
    assert received == []
    await instance.subscribe(conversation_topic("c1"))
    await instance.publish(envelope(2))
    await instance.publish(envelope(3, conversation="c2"))
    assert [e.id for e in received] == ["e2"]


async def test_subscriptions_are_reference_counted(bus: tuple[Bus, list[Envelope]]) -> None:
    instance, received = bus
    topic = conversation_topic("c1")
    await instance.subscribe(topic)
    await instance.subscribe(topic)
    assert instance.subscription_count() == 1
    await instance.unsubscribe(topic)
    await instance.publish(envelope(1))
    await instance.unsubscribe(topic)
    await instance.publish(envelope(2))
    await instance.unsubscribe(topic)  # one too many: ignored
    assert [e.id for e in received] == ["e1"]
    assert instance.subscription_count() == 0


async def test_once_per_node_even_on_several_topics(bus: tuple[Bus, list[Envelope]]) -> None:
    instance, received = bus
    for topic in (conversation_topic("c1"), user_topic("u1"), user_topic("u2")):
        await instance.subscribe(topic)
    await instance.publish(envelope(1, users=("u1", "u2")))
    await instance.publish(envelope(2, conversation=None, users=("u2",)))
    assert [e.id for e in received] == ["e1", "e2"]


async def test_publisher_order_is_kept(bus: tuple[Bus, list[Envelope]]) -> None:
    instance, received = bus
    await instance.subscribe(conversation_topic("c1"))
    for number in range(50):
        await instance.publish(envelope(number))
    assert [e.id for e in received] == [f"e{n}" for n in range(50)]


async def test_closed_bus_delivers_nothing(bus: tuple[Bus, list[Envelope]]) -> None:
    instance, received = bus
    await instance.subscribe(conversation_topic("c1"))
    await instance.close()
    await instance.publish(envelope(1))
    assert received == []


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
