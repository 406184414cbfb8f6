"""What only the Redis bus has to prove beyond the shared contract (``test_bus.py``):
Redis hears about a topic only on its first and last reference; a handler may subscribe
(a member joining) without stalling delivery; and Redis going away — killed, or silent —
is noticed, survived without a failed publish, and followed by a resubscription and a
reported gap, with no help from outside."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

import parley.bus.redis as redis_bus_module
from parley.bus import Envelope, conversation_topic, user_topic
from parley.bus.redis import BusUnavailable, RedisBus, bus_client
from tests.support.bus_envelopes import envelope
from tests.support.redis_fixtures import REDIS_URL
from tests.support.scaleout_helpers import RedisServer, eventually

WAIT = 5.0


class Recorder:
    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.gaps = 0

    async def handler(self, envelope: Envelope) -> None:
        self.received.append(envelope)

    async def on_gap(self) -> None:
        self.gaps += 1

    def ids(self) -> list[str]:
        return [e.id for e in self.received]


async def started(url: str, prefix: str, recorder: Recorder | None = None) -> RedisBus:
    bus = RedisBus(
        bus_client(url),
        prefix=prefix,
        node_id=secrets.token_hex(4),
        subscriber=bus_client(url, retries=0),
    )
    recorder = recorder or Recorder()
    await bus.start(recorder.handler, recorder.on_gap)
    return bus


async def stopped(*buses: RedisBus) -> None:
    for bus in buses:
        await bus.close()
        await bus._client.aclose()
        await bus._subscriber.aclose()


async def test_redis_hears_only_the_first_and_last_reference(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    bus = await started(REDIS_URL, redis_prefix + "bus")
    try:
        assert bus.connected
        pubsub = bus._pubsub
        sent: list[str] = []
        real_subscribe, real_unsubscribe = pubsub.subscribe, pubsub.unsubscribe

        async def subscribe(*channels: bytes) -> None:
            sent.append("SUBSCRIBE")
            await real_subscribe(*channels)

        def unsubscribe(*channels: bytes) -> object:
            sent.append("UNSUBSCRIBE")
            return real_unsubscribe(*channels)

        pubsub.subscribe, pubsub.unsubscribe = subscribe, unsubscribe
        channel = f"{redis_prefix}bus:bus:{conversation_topic('c1')}"
        for _ in range(3):
            await bus.subscribe(conversation_topic("c1"))
        assert await redis_client.pubsub_numsub(channel) == [(channel.encode(), 1)]
        for _ in range(2):
            await bus.unsubscribe(conversation_topic("c1"))
        assert sent == ["SUBSCRIBE"]
        await bus.unsubscribe(conversation_topic("c1"))
        assert sent == ["SUBSCRIBE", "UNSUBSCRIBE"]
        await eventually(
            lambda: redis_client.pubsub_numsub(channel),
            lambda numsub: numsub == [(channel.encode(), 0)],
            timeout=WAIT,
            what="Redis unsubscribed",
        )
    finally:
        await stopped(bus)


async def test_a_burst_into_one_conversation_crosses_as_one_redis_message(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A group commit's messages into one conversation reach the other nodes in one Redis
    message (one parse per node, not one per message), and arrive whole and in order —
    interleaved with another topic's envelopes, which split the run."""
    log = Recorder()
    receiver = await started(REDIS_URL, redis_prefix, log)
    publisher = await started(REDIS_URL, redis_prefix)
    channel = f"{redis_prefix}:bus:{conversation_topic('c1')}".encode()
    raw = redis_client.pubsub()
    try:
        await raw.subscribe(channel)
        await receiver.subscribe(conversation_topic("c1"))
        await receiver.subscribe(user_topic("u1"))
        # No await yields in between: the publisher task finds all of them queued.
        for number in range(50):
            await publisher.publish(envelope(number))
        await publisher.publish(envelope(50, conversation=None, users=("u1",)))
        await publisher.publish(envelope(51))
        expected = [f"e{n}" for n in range(52)]
        await eventually(
            lambda: asyncio.sleep(0, log.ids()), lambda ids: ids == expected,
            timeout=WAIT, what="every envelope, in publish order",
        )
        messages = []
        deadline = time.monotonic() + WAIT
        while len(messages) < 2 and time.monotonic() < deadline:
            message = await raw.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                messages.append(message["data"])
        assert [m.count(b"\n") + 1 for m in messages] == [50, 1]
    finally:
        await raw.aclose()
        await stopped(publisher, receiver)


async def test_a_handler_may_subscribe_while_envelopes_flow(redis_prefix: str) -> None:
    """The hub subscribes from inside delivery when a member joins; the confirmation it
    waits for is read by the same bus — delivery must not stall on it."""
    prefix = redis_prefix + "bus"
    joined: list[float] = []
    receiver_log = Recorder()

    async def handler(envelope: Envelope) -> None:
        receiver_log.received.append(envelope)
        if envelope.id == "join":
            began = time.monotonic()
            await receiver.subscribe(conversation_topic("c2"))
            joined.append(time.monotonic() - began)

    receiver = RedisBus(
        bus_client(REDIS_URL),
        prefix=prefix,
        node_id="receiver",
        subscriber=bus_client(REDIS_URL, retries=0),
    )
    await receiver.start(handler)
    sender = await started(REDIS_URL, prefix)
    try:
        await receiver.subscribe(user_topic("u1"))
        await sender.publish(envelope(0, conversation=None, users=("u1",), id="join"))
        await eventually(
            lambda: asyncio.sleep(0, joined), bool, timeout=WAIT, what="handler subscribed"
        )
        assert joined[0] < 1.0  # confirmed by Redis, not given up after a timeout
        await sender.publish(envelope(1, conversation="c2"))
        await eventually(
            lambda: asyncio.sleep(0, receiver_log.ids()),
            lambda ids: ids == ["join", "e1"],
            timeout=WAIT,
            what="the joined conversation's envelope",
        )
    finally:
        await stopped(receiver, sender)


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await asyncio.to_thread(RedisServer(tmp_path / "redis").start)
    try:
        yield server
    finally:
        server.kill()


async def test_survives_redis_restarting(private_redis: RedisServer) -> None:
    subscriber_log = Recorder()
    subscriber = await started(private_redis.url, "t", subscriber_log)
    publisher = await started(private_redis.url, "t")
    try:
        await subscriber.subscribe(conversation_topic("c1"))
        await publisher.publish(envelope(1))
        await eventually(
            lambda: asyncio.sleep(0, subscriber_log.ids()), lambda ids: ids == ["e1"],
            timeout=WAIT, what="e1 before the restart",
        )
        await subscriber.check()

        await asyncio.to_thread(private_redis.kill)
        await eventually(
            lambda: asyncio.sleep(0, subscriber.connected), lambda up: not up,
            timeout=WAIT, what="the subscriber notices Redis is gone",
        )
        with pytest.raises(BusUnavailable):
            await subscriber.check()
        await publisher.publish(envelope(2))  # never raises: the change is committed
        await publisher.flush()
        assert publisher.publish_failures >= 1

        await asyncio.to_thread(private_redis.start)  # same port, empty: nothing survived
        await eventually(
            lambda: asyncio.sleep(0, subscriber.connected), bool,
            timeout=WAIT, what="the subscriber resubscribes by itself",
        )
        await subscriber.check()
        assert subscriber_log.gaps == 1  # the gateway has its sessions resume
        await publisher.publish(envelope(3))
        await eventually(
            lambda: asyncio.sleep(0, subscriber_log.ids()), lambda ids: ids == ["e1", "e3"],
            timeout=WAIT, what="delivery after the restart",
        )
    finally:
        await stopped(subscriber, publisher)


async def test_notices_a_silent_redis(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped (not dead) Redis keeps the socket open: only the pings tell."""
    monkeypatch.setattr(redis_bus_module, "DEAD_AFTER_SECONDS", 0.8)
    monkeypatch.setattr(redis_bus_module, "PING_INTERVAL_SECONDS", 0.2)
    log = Recorder()
    bus = await started(private_redis.url, "t", log)
    assert private_redis.process is not None
    pid = private_redis.process.pid
    try:
        os.kill(pid, signal.SIGSTOP)
        try:
            await eventually(
                lambda: asyncio.sleep(0, bus.connected), lambda up: not up,
                timeout=WAIT, what="a silent Redis is noticed",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        await eventually(
            lambda: asyncio.sleep(0, bus.connected), bool,
            timeout=WAIT, what="reconnected once Redis answers again",
        )
        assert log.gaps == 1
    finally:
        await stopped(bus)


async def test_a_lagging_event_loop_is_not_a_silent_redis(
    redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node whose own loop stalls past the dead-after time (a busy worker on a loaded
    machine) has not lost Redis: its sessions are not closed for a gap, and envelopes
    keep arriving."""
    monkeypatch.setattr(redis_bus_module, "DEAD_AFTER_SECONDS", 0.8)
    monkeypatch.setattr(redis_bus_module, "PING_INTERVAL_SECONDS", 0.2)
    log = Recorder()
    bus = await started(REDIS_URL, redis_prefix, log)
    publisher = await started(REDIS_URL, redis_prefix)
    try:
        await bus.subscribe(conversation_topic("c1"))
        await asyncio.sleep(0.3)  # a ping or two answered: the reader is in its polling loop
        time.sleep(1.5)  # the whole loop stalls, past DEAD_AFTER_SECONDS
        await publisher.publish(envelope(1))
        await eventually(
            lambda: asyncio.sleep(0, log.ids()), lambda ids: ids == ["e1"],
            timeout=WAIT, what="delivery after the stall",
        )
        await asyncio.sleep(1.0)  # past another DEAD_AFTER_SECONDS of normal polling
        assert bus.connected
        assert bus.reconnects == 0
        assert log.gaps == 0
    finally:
        await stopped(publisher, bus)


async def test_a_node_started_without_redis_catches_up(tmp_path: Path) -> None:
    """Redis down at start: the node starts anyway, sessions subscribe (nothing to wait
    for), and once Redis answers the node subscribes and reports the gap — its sessions
    may have missed events from other nodes meanwhile."""
    server = RedisServer(tmp_path / "redis")  # not started yet
    log = Recorder()
    bus = await started(server.url, "t", log)
    try:
        assert not bus.connected
        await asyncio.wait_for(bus.subscribe(conversation_topic("c1")), 1.0)
        await asyncio.to_thread(server.start)
        await eventually(
            lambda: asyncio.sleep(0, bus.connected), bool, timeout=WAIT, what="connected"
        )
        assert log.gaps == 1
        publisher = await started(server.url, "t")
        try:
            await publisher.publish(envelope(1))
            await eventually(
                lambda: asyncio.sleep(0, log.ids()), lambda ids: ids == ["e1"],
                timeout=WAIT, what="delivery once Redis is there",
            )
        finally:
            await stopped(publisher)
    finally:
        await stopped(bus)
        server.kill()
