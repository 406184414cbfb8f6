"""Presence introductions: when people start sharing a conversation, each learns at once
whether the other is online.

Presence is pushed on *changes* (``presence.Presence``) and taken whole at ``ready``. Two
people who were strangers until a direct conversation or a group brought them together
would otherwise see each other offline until one of them changed status or reconnected.
This listener on the service events closes that gap: after ``conversation.created`` and
``member.added`` it sends the current status of everyone online or away to the people who
newly share a conversation with them, as ``presence.updated`` events — the same frames a
change sends — and only to people allowed to see it (the presence audience: no blocked
users).

The audience relation is symmetric (sharing, contacts and blocks are), so one audience read
per newcomer answers both directions: what the newcomer may see and who may see them.
Introductions run in the background: the request that created the conversation is answered
without waiting for presence. Groups created with more than ``MAX_NEWCOMERS`` people are
not introduced (a read per newcomer); their members see statuses from the next change or
reconnection, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from parley.gateway.presence import Presence
from parley.gateway.typing_indicators import Publisher
from parley.services.events import Event
from parley.wire.events import EventType

log = logging.getLogger(__name__)

Audience = Callable[[str], Awaitable[set[str]]]
MemberIds = Callable[[str], Awaitable[list[str]]]

# One audience read per newcomer; a direct conversation has two, adding people to a group
# a handful. Creating a group of hundreds at once is rare and not worth hundreds of reads.
MAX_NEWCOMERS = 50


class PresenceIntroductions:
    def __init__(
        self, presence: Presence, publisher: Publisher, audience: Audience, member_ids: MemberIds
    ) -> None:
        self._presence = presence
        self._publisher = publisher
        self._audience = audience
        self._member_ids = member_ids
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, events: Sequence[Event]) -> None:
        """The EventBroker listener: starts an introduction per membership event."""
        for event in events:
            if event.type is EventType.CONVERSATION_CREATED:
                newcomers = set(event.user_ids)
            elif event.type is EventType.MEMBER_ADDED:
                newcomers = {u for u in event.data.get("user_ids", ()) if isinstance(u, str)}
            else:
                continue
            conversation_id = event.conversation_id or event.data.get("conversation_id")
            if not newcomers or len(newcomers) > MAX_NEWCOMERS or not isinstance(conversation_id, str):
                continue
            task = asyncio.create_task(self._introduce(conversation_id, newcomers))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _introduce(self, conversation_id: str, newcomers: set[str]) -> None:
        try:
            everyone = set(await self._member_ids(conversation_id))
            newcomers &= everyone  # someone may have left meanwhile
            # Who may see whom, among the people who met here: {seen: {viewers}}.
            viewers: dict[str, set[str]] = {}
            for newcomer in newcomers:
                allowed = await self._audience(newcomer) & everyone
                viewers.setdefault(newcomer, set()).update(allowed)
                for other in allowed - newcomers:
                    viewers.setdefault(other, set()).add(newcomer)
            for status in await self._presence.snapshot(viewers):
                audience = viewers.get(status["user_id"], set()) - {status["user_id"]}
                if audience:
                    data: dict[str, Any] = dict(status)
                    await self._publisher.publish(
                        EventType.PRESENCE_UPDATED, data, user_ids=sorted(audience)
                    )
        except Exception:  # best effort, like all presence: the next change corrects it
            log.exception("presence introduction failed", extra={"conversation_id": conversation_id})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
