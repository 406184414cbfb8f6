"""The hub on its own: local fan-out, one frame object shared by all recipients, membership
changes from the event stream, and the attach / sync race that must never leak a
conversation to someone who just left it."""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.bus import Envelope, InProcessBus
from parley.gateway.hub import Hub
from parley.gateway.router import envelope_for
from parley.services.events import Event


@dataclass(eq=False)
class Recorder:
    """A Peer that keeps what it is pushed."""

    user_id: str
    connection_id: str
    frames: list[str] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)

    def push(self, frame: str) -> None:
        self.frames.append(frame)

    def stamp(self, committed_at: float) -> None:
        self.stamps.append(committed_at)


async def hub_with(
    *peers: Recorder, conversations: dict[str, list[str]]
) -> tuple[Hub, InProcessBus]:
    bus = InProcessBus()
    hub = Hub(bus)
    await bus.start(hub.deliver)
    for peer in peers:
        await hub.attach(peer)
        await hub.sync(peer, conversations.get(peer.user_id, []))
        hub.settle(peer)
    return hub, bus


def message(conversation_id: str, seq: int) -> Event:
    return Event(
        "message.created", {"conversation_id": conversation_id, "seq": seq}, conversation_id
    )


async def publish(bus: InProcessBus, event: Event) -> Envelope:
    envelope = envelope_for(event)
    await bus.publish(envelope)
    return envelope


async def test_fan_out_shares_one_frame_and_reaches_other_devices() -> None:
    laptop, phone, bob, carol = (
        Recorder("alice", "1"),
        Recorder("alice", "2"),
        Recorder("bob", "3"),
        Recorder("carol", "4"),
    )
    hub, bus = await hub_with(
        laptop, phone, bob, carol, conversations={"alice": ["c1"], "bob": ["c1"], "carol": ["c2"]}
    )
    sent = await publish(bus, message("c1", 1))
    assert laptop.frames == phone.frames == bob.frames == [sent.frame]
    assert laptop.frames[0] is bob.frames[0]  # serialised once, shared
    assert carol.frames == []
    # An event for users and their conversation reaches each session once.
    both = await publish(
        bus, Event("member.updated", {"conversation_id": "c1"}, "c1", ("alice", "bob"))
    )
    assert laptop.frames.count(both.frame) == 1 and bob.frames.count(both.frame) == 1
    assert hub.session_count == 4 and hub.conversation_count == 2


async def test_membership_events_change_who_receives() -> None:
    alice, bob, dave = Recorder("alice", "1"), Recorder("bob", "2"), Recorder("dave", "3")
    hub, bus = await hub_with(alice, bob, dave, conversations={"alice": ["g"], "bob": ["g"]})
    added = await publish(
        bus, Event("member.added", {"conversation_id": "g", "user_ids": ["dave"]}, "g", ("dave",))
    )
    assert added.frame in dave.frames and hub.is_joined(dave, "g")
    after = await publish(bus, message("g", 5))
    assert after.frame in dave.frames
    removed = await publish(
        bus, Event("member.removed", {"conversation_id": "g", "user_ids": ["bob"]}, "g", ("bob",))
    )
    assert bob.frames[-1] == removed.frame  # told first...
    later = await publish(bus, message("g", 7))
    assert later.frame not in bob.frames  # ...then nothing more
    gone = await publish(
        bus, Event("conversation.deleted", {"conversation_id": "g"}, None, ("alice", "dave"))
    )
    assert alice.frames[-1] == dave.frames[-1] == gone.frame
    assert not hub.is_joined(alice, "g") and not hub.is_joined(dave, "g")
    assert bus.subscription_count() == 3  # only the three user topics are left


async def test_a_removal_racing_the_initial_read_is_not_undone() -> None:
    bus = InProcessBus()
    hub = Hub(bus)
    await bus.start(hub.deliver)
    bob = Recorder("bob", "1")
    await hub.attach(bob)
    # bob is removed while his session reads its conversations; the read is stale.
    await publish(bus, Event("member.removed", {"conversation_id": "g"}, "g", ("bob",)))
    await hub.sync(bob, ["g", "dm"])
    hub.settle(bob)
    assert not hub.is_joined(bob, "g") and hub.is_joined(bob, "dm")
    secret = await publish(bus, message("g", 9))
    assert secret.frame not in bob.frames


async def test_detach_releases_every_subscription() -> None:
    alice, bob = Recorder("alice", "1"), Recorder("bob", "2")
    hub, bus = await hub_with(alice, bob, conversations={"alice": ["c1", "c2"], "bob": ["c1"]})
    assert bus.subscription_count() == 4
    await hub.detach(alice)
    assert bus.subscription_count() == 2 and hub.peers() == [bob]
    await hub.detach(bob)
    assert bus.subscription_count() == 0 and hub.session_count == 0
