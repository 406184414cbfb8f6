"""From service events to the bus: serialise once, route, and say what membership changes.

The router is the gateway's listener on the service :class:`~parley.services.events.
EventBroker`. Every event the services emit after a commit — whether the change came over
REST or the socket — becomes one :class:`~parley.bus.base.Envelope` whose frame is encoded
here, once, and then shared by every recipient on every node.

Ephemeral events (typing, presence) are published through :meth:`EventRouter.publish`
the same way; they are simply never stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from parley.bus.base import Bus, Envelope, MembershipAction, MembershipChange
from parley.gateway.protocol import event_frame
from parley.gateway.receipt_throttle import RECEIPT_TYPES, ReceiptThrottle
from parley.ids import new_id
from parley.services.events import Event
from parley.wire.events import EventType

log = logging.getLogger(__name__)

# Which events change who receives a conversation, and how (see Hub.deliver).
MEMBERSHIP_ACTIONS: dict[str, MembershipAction] = {
    EventType.CONVERSATION_CREATED: MembershipAction.JOIN,
    EventType.MEMBER_ADDED: MembershipAction.JOIN,
    EventType.MEMBER_REMOVED: MembershipAction.LEAVE,
    EventType.CONVERSATION_DELETED: MembershipAction.CLOSE,
}


# Events whose delivery latency is measured, from the commit to the frame on the wire: a
# new message is what users wait for.
TIMED_TYPES = frozenset({"message.created"})


def envelope_for(event: Event) -> Envelope:
    membership = None
    action = MEMBERSHIP_ACTIONS.get(event.type)
    subject = event.conversation_id or event.data.get("conversation_id")
    if action is not None and isinstance(subject, str):
        membership = MembershipChange(action, subject, tuple(event.user_ids))
    return Envelope(
        id=new_id(),
        type=event.type,
        frame=event_frame(event.type, event.data if event.data_text is None else event.data_text),
        conversation_id=event.conversation_id,
        user_ids=tuple(event.user_ids),
        membership=membership,
        # The services emit after the commit: now is when the message became durable.
        committed_at=time.time() if event.type in TIMED_TYPES else None,
    )


class EventRouter:
    def __init__(self, bus: Bus, *, receipt_window_seconds: float) -> None:
        self._bus = bus
        self._throttle = (
            ReceiptThrottle(receipt_window_seconds, self._publish_event)
            if receipt_window_seconds > 0
            else None
        )
        self.published = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        """The EventBroker listener: called after each commit, in commit order."""
        for event in events:
            if self._throttle is not None and event.type in RECEIPT_TYPES:
                await self._throttle.submit(event)
            else:
                await self._publish_event(event)

    async def publish(
        self,
        event_type: EventType,
        data: dict[str, Any],
        *,
        conversation_id: str | None = None,
        user_ids: Sequence[str] = (),
    ) -> None:
        """Publish an ephemeral event (typing, presence)."""
        await self._publish_event(Event(event_type, data, conversation_id, tuple(user_ids)))

    async def _publish_event(self, event: Event) -> None:
        if event.conversation_id is None and not event.user_ids:
            return
        try:
            envelope = envelope_for(event)
        except (TypeError, ValueError):  # a payload json cannot encode is a bug: say where
            log.exception("event could not be encoded", extra={"event_type": event.type})
            return
        self.published += 1
        await self._bus.publish(envelope)

    async def close(self) -> None:
        """Send any receipts still folded in a throttle window."""
        if self._throttle is not None:
            await self._throttle.flush()
