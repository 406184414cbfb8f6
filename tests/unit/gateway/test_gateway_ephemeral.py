"""The ephemeral parts on their own: typing (throttled, self-expiring) and receipt folding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from parley.gateway.receipt_throttle import ReceiptThrottle
from parley.gateway.typing_indicators import TypingTracker
from parley.services.events import Event

WAIT = 5.0


class Published:
    """A Publisher that keeps what it is given and lets tests wait for it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Condition()

    async def publish(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        conversation_id: str | None = None,
        user_ids: Sequence[str] = (),
    ) -> None:
        async with self.changed:
            self.events.append((event_type, data))
            self.changed.notify_all()

    async def publish_event(self, event: Event) -> None:
        await self.publish(event.type, event.data, conversation_id=event.conversation_id)

    async def wait_count(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.events) >= count), WAIT)

    def types(self) -> list[str]:
        return [event_type for event_type, _ in self.events]


async def test_typing_is_throttled_and_expires_by_itself() -> None:
    published = Published()
    now = [100.0]
    typing = TypingTracker(
        published, expire_seconds=0.2, throttle_seconds=3.0, clock=lambda: now[0]
    )
    try:
        await typing.start("alice", "c1")
        await typing.start("alice", "c1")  # a refresh inside the throttle window: no event
        now[0] += 3.5
        await typing.start("alice", "c1")  # past the window: announced again
        assert published.types() == ["typing.started", "typing.started"]
        assert published.events[0][1] == {
            "conversation_id": "c1",
            "user_id": "alice",
            "expires_in_ms": 200,
        }
        # No refresh: it stops on its own.
        await published.wait_count(3)
        assert published.events[2] == (
            "typing.stopped",
            {"conversation_id": "c1", "user_id": "alice"},
        )
        assert not typing.is_typing("alice", "c1")

        await typing.start("bob", "c1")
        await typing.stop("bob", "c1")
        await typing.stop("bob", "c1")  # not typing any more: nothing to say
        await typing.start("carol", "c1")
        typing.forget("carol", "c1")  # sent a message: ends silently
        assert published.types()[3:] == ["typing.started", "typing.stopped", "typing.started"]
    finally:
        await typing.close()
    assert len(published.events) == 6  # carol's forgotten indicator never expired into an event


def receipt(kind: str, user: str, seq: int, conversation: str = "c1") -> Event:
    data = {"conversation_id": conversation, "user_id": user, "seq": seq}
    return Event(kind, data, conversation_id=conversation)


async def test_receipts_fold_within_the_window_and_keep_the_newest() -> None:
    published = Published()
    throttle = ReceiptThrottle(0.2, published.publish_event)
    try:
        await throttle.submit(receipt("receipt.delivered", "bob", 1))  # at once
        await throttle.submit(receipt("receipt.delivered", "bob", 3))  # folded...
        await throttle.submit(receipt("receipt.delivered", "bob", 2))  # (older: ignored)
        await throttle.submit(receipt("receipt.read", "bob", 2))  # another kind: at once
        await throttle.submit(receipt("receipt.delivered", "carol", 5))  # another member
        assert [(t, d["user_id"], d["seq"]) for t, d in published.events] == [
            ("receipt.delivered", "bob", 1),
            ("receipt.read", "bob", 2),
            ("receipt.delivered", "carol", 5),
        ]
        await published.wait_count(4)  # the window ends: the newest folded watermark
        assert published.events[3][1]["seq"] == 3
        await throttle.submit(receipt("receipt.read", "bob", 9))  # now, or folded until flush
        await throttle.flush()  # shutdown sends what is folded
        assert published.events[-1] == (
            "receipt.read",
            {"conversation_id": "c1", "user_id": "bob", "seq": 9},
        )
    finally:
        await throttle.flush()
    assert len(published.events) == 5
