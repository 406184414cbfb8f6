"""The hub: this node's sessions, by user and by conversation, and local fan-out.

The hub is the bus's handler on this node. For each envelope it finds the local sessions
that should see it — those subscribed to its conversation plus those of its named users,
each once — and hands every one of them the same encoded frame. It owns the node's bus
subscriptions: a topic is subscribed once per session that needs it (the bus counts).

Membership changes travel as envelopes too, so every node updates its own sessions from
the same stream: JOIN before delivery (the new member sees the event that added them),
LEAVE and CLOSE after it (the removed member sees their removal, then nothing more).

Sessions join the hub in two steps: :meth:`Hub.attach` (their user topic, so membership
events reach them) and :meth:`Hub.sync` with the conversations a database read returned.
A membership event that arrives between the two is newer than that read, so ``sync`` leaves
the conversations it touched alone — see :meth:`Hub.sync`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from parley.bus.base import (
    Bus,
    Envelope,
    MembershipAction,
    MembershipChange,
    conversation_topic,
    user_topic,
)

# Recipients per envelope and node whose delivery is timed: a sample that follows load (every
# message is timed somewhere) while a fan-out to a thousand members costs a few observations,
# not a thousand.
TIMED_PER_ENVELOPE = 4


class Peer(Protocol):
    """What the hub needs of a session. ``push`` must not block: it queues or refuses."""

    @property
    def user_id(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    def push(self, frame: str) -> None: ...

    def stamp(self, committed_at: float) -> None:
        """Time the frame just pushed: its latency is recorded once it is written."""
        ...


class Hub:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._by_user: dict[str, set[Peer]] = {}
        self._by_conversation: dict[str, set[Peer]] = {}
        self._joined: dict[Peer, set[str]] = {}
        # Conversations whose membership an event decided while the peer was syncing.
        self._touched: dict[Peer, set[str]] = {}
        self.frames_pushed = 0

    # --- sessions

    async def attach(self, peer: Peer) -> None:
        """Start receiving envelopes addressed to ``peer``'s user."""
        if peer in self._joined:
            return
        self._joined[peer] = set()
        self._touched[peer] = set()
        self._by_user.setdefault(peer.user_id, set()).add(peer)
        await self._bus.subscribe(user_topic(peer.user_id))

    async def sync(self, peer: Peer, conversation_ids: Iterable[str]) -> None:
        """Make ``peer`` receive exactly ``conversation_ids`` (a fresh database read).

        A conversation some membership event has already joined or left since
        :meth:`attach` is skipped: the event is at least as new as the read, so a removal
        that raced the read cannot be undone by it (which would leak the conversation's
        events to a non-member), nor an addition.
        """
        joined = self._joined.get(peer)
        if joined is None:
            return
        touched = self._touched.get(peer, set())
        wanted = set(conversation_ids) - touched
        for conversation_id in sorted(wanted - joined):
            await self._join(peer, conversation_id)
        for conversation_id in sorted(joined - wanted - touched):
            await self._leave(peer, conversation_id)

    def settle(self, peer: Peer) -> None:
        """``peer`` is done syncing; membership events simply apply from now on."""
        self._touched.pop(peer, None)

    async def detach(self, peer: Peer) -> None:
        joined = self._joined.pop(peer, None)
        if joined is None:
            return
        self._touched.pop(peer, None)
        for conversation_id in sorted(joined):
            await self._remove_from_conversation(peer, conversation_id)
        peers = self._by_user.get(peer.user_id)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._by_user[peer.user_id]
        await self._bus.unsubscribe(user_topic(peer.user_id))

    def is_joined(self, peer: Peer, conversation_id: str) -> bool:
        return conversation_id in self._joined.get(peer, ())

    def peers(self) -> list[Peer]:
        return list(self._joined)

    def peers_of(self, user_id: str) -> list[Peer]:
        return list(self._by_user.get(user_id, ()))

    @property
    def session_count(self) -> int:
        return len(self._joined)

    @property
    def conversation_count(self) -> int:
        return len(self._by_conversation)

    # --- delivery (the bus handler)

    async def deliver(self, envelope: Envelope) -> None:
        change = envelope.membership
        if change is not None and change.action is MembershipAction.JOIN:
            await self._apply(change)
        frame = envelope.frame
        if not envelope.user_ids and envelope.conversation_id is not None:
            # The common case, a conversation event: no set to build.
            recipients: Iterable[Peer] = tuple(
                self._by_conversation.get(envelope.conversation_id, ())
            )
        else:
            found: set[Peer] = set()
            if envelope.conversation_id is not None:
                found.update(self._by_conversation.get(envelope.conversation_id, ()))
            for user_id in envelope.user_ids:
                found.update(self._by_user.get(user_id, ()))
            recipients = found
        count = 0
        committed_at = envelope.committed_at
        if committed_at is None:
            for peer in recipients:
                peer.push(frame)
                count += 1
        else:
            for peer in recipients:
                peer.push(frame)
                if count < TIMED_PER_ENVELOPE:
                    peer.stamp(committed_at)
                count += 1
        self.frames_pushed += count
        if change is not None and change.action is not MembershipAction.JOIN:
            await self._apply(change)

    async def _apply(self, change: MembershipChange) -> None:
        conversation_id = change.conversation_id
        if change.action is MembershipAction.CLOSE:
            # Any syncing session might be about to join it from a stale read.
            for touched in self._touched.values():
                touched.add(conversation_id)
            for peer in list(self._by_conversation.get(conversation_id, ())):
                await self._leave(peer, conversation_id)
            return
        for user_id in change.user_ids:
            for peer in list(self._by_user.get(user_id, ())):
                if peer in self._touched:
                    self._touched[peer].add(conversation_id)
                if change.action is MembershipAction.JOIN:
                    await self._join(peer, conversation_id)
                else:
                    await self._leave(peer, conversation_id)

    async def _join(self, peer: Peer, conversation_id: str) -> None:
        joined = self._joined.get(peer)
        if joined is None or conversation_id in joined:
            return
        joined.add(conversation_id)
        self._by_conversation.setdefault(conversation_id, set()).add(peer)
        await self._bus.subscribe(conversation_topic(conversation_id))

    async def _leave(self, peer: Peer, conversation_id: str) -> None:
        joined = self._joined.get(peer)
        if joined is None or conversation_id not in joined:
            return
        joined.discard(conversation_id)
        await self._remove_from_conversation(peer, conversation_id)

    async def _remove_from_conversation(self, peer: Peer, conversation_id: str) -> None:
        peers = self._by_conversation.get(conversation_id)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._by_conversation[conversation_id]
        await self._bus.unsubscribe(conversation_topic(conversation_id))
