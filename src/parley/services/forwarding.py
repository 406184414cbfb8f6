"""Forwarding a message to other conversations (DESIGN §6.5).

The caller must see the original (a member of its conversation) and be a member of every
target; the targets are checked before anything is sent, and the group commit checks
membership and blocks again as it writes. Each copy is a new message of its target (the
target's next seq, its own events) with ``forwarded_from`` naming the original — the first
original when forwarding a forward. The original's files are shared, not copied: new
attachment rows over the same blobs (``attachment_records.share``). A forward mentions
nobody: forwarding "@ann" does not ping Ann again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

from parley.clock import isoformat
from parley.errors import MessageDeleted, ValidationFailed
from parley.services.access import membership, visible_message
from parley.services.message_records import Message
from parley.services.send_admission import SendRequest, SendResult
from parley.store.db import Database

MAX_TARGETS = 10

Enqueue = Callable[[SendRequest], Awaitable[Awaitable[SendResult]]]


class Forwarding:
    def __init__(self, db: Database, enqueue: Enqueue) -> None:
        self._db = db
        self._enqueue = enqueue  # MessageSender.enqueue_request: rate limits, group commit

    async def forward(
        self, user_id: str, message_id: str, conversation_ids: Sequence[str]
    ) -> list[Message]:
        """One new message per target, in the order given."""
        targets = list(conversation_ids)
        if not 1 <= len(targets) <= MAX_TARGETS:
            raise ValidationFailed.field("conversation_ids", f"give 1 to {MAX_TARGETS} conversations")
        if len(set(targets)) != len(targets):
            raise ValidationFailed.field("conversation_ids", "must not repeat an id")
        async with self._db.read() as conn:
            original = await visible_message(conn, user_id, message_id, urls=None)  # copied, not shown
            for target in targets:
                await membership(conn, target, user_id)  # NotFound for any other
        if original.kind != "text":
            raise ValidationFailed.field("message_id", "system messages cannot be forwarded")
        if original.deleted:
            raise MessageDeleted()
        source = original.forwarded_from or {
            "message_id": original.id,
            "conversation_id": original.conversation_id,
            "sender_id": original.sender_id,
            "created_at": isoformat(original.created_at),
        }
        attribution = json.dumps(source, sort_keys=True)
        pending = [
            await self._enqueue(
                SendRequest(
                    sender_id=user_id,
                    conversation_id=target,
                    content=original.content,
                    forwarded_from=attribution,
                    share_attachments_of=original.id if original.attachments else None,
                )
            )
            for target in targets
        ]
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a membership or block that changed since the check
        return [outcome.message for outcome in outcomes if isinstance(outcome, SendResult)]
