"""The bus contract: what travels (:class:`Envelope`), where (topics), and the :class:`Bus`.

Topics are plain strings: ``conversation:<id>`` reaches every node with a session in that
conversation, ``user:<id>`` every node with a session of that user. An envelope names a
conversation, users, or both; it is published to all of their topics at once.

Guarantees every backend gives (the contract tests in ``tests/contract/test_bus.py`` check them):

- **At most once per node.** A node subscribed to several of an envelope's topics still
  receives it once. Nothing is retried: a lost envelope is recovered by the client, which
  sees the seq gap and asks ``changes`` (DESIGN §2 "Real-time gateway protocol").
- **Publisher order.** Envelopes from one publisher reach a subscriber in publish order —
  on Redis Cluster (sharded pub/sub) per topic only, since two topics may live on two
  shards. A conversation's events share its topic, and an envelope with several topics
  (a member added) is ordered with the events of each of them.
- **Reference-counted subscriptions.** ``subscribe`` n times needs ``unsubscribe`` n times
  before the node stops receiving a topic; a Redis backend only talks to Redis on the first
  subscribe and the last unsubscribe. Once ``subscribe`` returns, every envelope published
  to the topic afterwards (by any node) reaches this node, unless the bus reports a gap.
- **Gaps are reported.** A backend that knows it may have lost envelopes (its connection
  to Redis dropped and came back) awaits ``on_gap`` once it receives again; the gateway
  then has its sessions resume by seq. The in-process bus never loses one.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from parley.wire.json_text import dumps_utf8

CONVERSATION_PREFIX = "conversation:"
USER_PREFIX = "user:"


def conversation_topic(conversation_id: str) -> str:
    return CONVERSATION_PREFIX + conversation_id


def user_topic(user_id: str) -> str:
    return USER_PREFIX + user_id


class MembershipAction(enum.Enum):
    """How an event changes who receives a conversation's events (applied by each hub)."""

    JOIN = "join"  # the named users' sessions start receiving the conversation
    LEAVE = "leave"  # ... stop receiving it, after this envelope is delivered
    CLOSE = "close"  # every session stops receiving it (the conversation is gone)


@dataclass(frozen=True, slots=True)
class MembershipChange:
    action: MembershipAction
    conversation_id: str
    user_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event on its way to sessions.

    ``frame`` is the complete wire frame, serialised once by the publishing node and shared
    by every recipient on every node.
    """

    id: str
    type: str
    frame: str
    conversation_id: str | None = None
    user_ids: tuple[str, ...] = field(default=())
    membership: MembershipChange | None = None
    # When the change was committed (Unix time, publishing node's clock), on the events whose
    # delivery latency is measured (parley_gateway_delivery_seconds); None on the others.
    committed_at: float | None = None

    def encode(self) -> bytes:
        """The form a networked backend sends (one JSON object)."""
        body: dict[str, object] = {
            "id": self.id,
            "type": self.type,
            "frame": self.frame,
            "conversation_id": self.conversation_id,
            "user_ids": list(self.user_ids),
        }
        if self.membership is not None:
            body["membership"] = {
                "action": self.membership.action.value,
                "conversation_id": self.membership.conversation_id,
                "user_ids": list(self.membership.user_ids),
            }
        if self.committed_at is not None:
            body["committed_at"] = self.committed_at
        return dumps_utf8(body)

    @classmethod
    def decode(cls, raw: bytes | str) -> Envelope:
        # orjson: every number here is the server's own (none beyond 64 bits), and this is
        # done for every envelope another node publishes.
        body = orjson.loads(raw)
        change = body.get("membership")
        return cls(
            id=str(body["id"]),
            type=str(body["type"]),
            frame=str(body["frame"]),
            conversation_id=body.get("conversation_id"),
            user_ids=tuple(body.get("user_ids", ())),
            membership=MembershipChange(
                MembershipAction(change["action"]),
                str(change["conversation_id"]),
                tuple(change.get("user_ids", ())),
            )
            if change
            else None,
            committed_at=_float_or_none(body.get("committed_at")),
        )


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def topics_of(envelope: Envelope) -> list[str]:
    """Every topic ``envelope`` is published to."""
    topics = [user_topic(user_id) for user_id in envelope.user_ids]
    if envelope.conversation_id is not None:
        topics.append(conversation_topic(envelope.conversation_id))
    return topics


EnvelopeHandler = Callable[[Envelope], Awaitable[None]]
GapHandler = Callable[[], Awaitable[None]]


class Bus(Protocol):
    async def start(self, handler: EnvelopeHandler, on_gap: GapHandler | None = None) -> None:
        """Deliver every envelope published (by any node) to a subscribed topic to
        ``handler``, once per envelope, in publish order per publisher; await ``on_gap``
        after envelopes may have been lost."""
        ...

    async def publish(self, envelope: Envelope) -> None:
        """Send ``envelope`` to all of ``topics_of(envelope)``. Never raises for a delivery
        problem (logged instead): the change is committed already."""
        ...

    async def subscribe(self, topic: str) -> None:
        """Receive ``topic`` on this node (reference-counted)."""
        ...

    async def unsubscribe(self, topic: str) -> None:
        """Drop one reference to ``topic``; unknown topics are ignored."""
        ...

    def subscription_count(self) -> int:
        """Topics this node currently receives (for metrics and tests)."""
        ...

    async def close(self) -> None:
        """Stop delivering; later publishes are dropped."""
        ...
