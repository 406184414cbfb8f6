"""Who is notified of what (DESIGN §6.2): the rules, as pure functions of plain records.

A member is notified of a message when all of these hold:

- it is not their own (``sender_id``), and not deleted;
- it is a text message, or a system message that concerns them (it names them in
  ``user_ids`` and someone else did it: "Ann added you", "Ann made you an admin");
- they have not read it. *Reading on any device* is known by the member's read watermark
  (``last_read_seq``), shared by every device and node: a client showing a conversation
  marks it read as messages appear (the web client within half a second while the window
  is visible), so a message still unread when its notification is due — after
  ``PARLEY_PUSH_DELAY_SECONDS`` for a push, ``PARLEY_EMAIL_NOTIFY_DELAY_SECONDS`` for an
  email — was not being read anywhere. Each job checks again just before sending;
- the conversation is not muted for them (``muted_until`` in the future);
- their level allows it: ``all`` anything; ``mentions`` direct conversations and messages
  mentioning them; ``none`` nothing;
- they are still a member (a member who left has no row, so nothing matches).

A reply that lives in a thread only (DESIGN §6.5) follows the thread instead: it notifies
those who follow the thread (taking part follows it) and those it mentions, and "read" is
their read mark of the thread — never every member under ``all``.

Email digests carry only what ``mentions`` would (DMs and mentions), whatever the level.
In an encrypted conversation notifications carry no text ("New message").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parley.services.notification_settings import NotifyLevel, is_muted

PREVIEW_CHARS = 200
# System events worth telling the member they name.
CONCERNING_EVENTS = {"member.added": "added you", "member.role": "changed your role"}
_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_MARKERS = re.compile(r"(\*\*|__|~~|`)")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class MessageFacts:
    id: str
    conversation_id: str
    seq: int
    sender_id: str | None
    kind: str
    content: str
    mentions: tuple[str, ...]
    system_event: dict[str, Any] | None
    created_at: datetime
    deleted: bool
    attachment_names: tuple[str, ...] = ()
    # A reply shown only in its thread (not also sent to the conversation): its root.
    thread_root_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    id: str
    type: str
    name: str | None
    encrypted: bool = False

    @property
    def is_direct(self) -> bool:
        return self.type == "direct"


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    user_id: str
    last_read_seq: int
    level: NotifyLevel  # the effective one: the member's, else the user's default
    muted_until: datetime | None


@dataclass(frozen=True, slots=True)
class ThreadFollow:
    """A recipient's state of the thread a reply is in (``thread_follows``)."""

    following: bool
    last_read_seq: int


def concerns(message: MessageFacts, user_id: str) -> bool:
    """A system message that names ``user_id`` and was done by someone else."""
    event = message.system_event or {}
    named = event.get("user_ids")
    return (
        message.kind == "system"
        and event.get("type") in CONCERNING_EVENTS
        and isinstance(named, list)
        and user_id in named
        and event.get("actor_id") != user_id
    )


def is_personal(message: MessageFacts, conversation: ConversationFacts, user_id: str) -> bool:
    """A direct message, a mention of ``user_id``, or a system message about them: what
    ``mentions`` lets through and what digests carry."""
    return conversation.is_direct or user_id in message.mentions or concerns(message, user_id)


def should_notify(
    message: MessageFacts,
    conversation: ConversationFacts,
    recipient: RecipientFacts,
    now: datetime,
    follow: ThreadFollow | None = None,
) -> bool:
    """``follow``: the recipient's state of the message's thread, for a thread-only reply
    (None: they never followed or read it)."""
    uid = recipient.user_id
    if message.deleted or message.sender_id == uid:
        return False
    if message.kind != "text" and not concerns(message, uid):
        return False
    if is_muted(recipient.muted_until, now) or recipient.level is NotifyLevel.NONE:
        return False
    if message.thread_root_id is not None:
        if follow is not None and message.seq <= follow.last_read_seq:
            return False
        return (follow is not None and follow.following) or uid in message.mentions
    if message.seq <= recipient.last_read_seq:
        return False
    if recipient.level is NotifyLevel.MENTIONS:
        return is_personal(message, conversation, uid)
    return True


def should_email(
    message: MessageFacts,
    conversation: ConversationFacts,
    recipient: RecipientFacts,
    now: datetime,
    follow: ThreadFollow | None = None,
) -> bool:
    return should_notify(message, conversation, recipient, now, follow) and is_personal(
        message, conversation, recipient.user_id
    )


def plain_preview(content: str) -> str:
    """Message Markdown as one short line of plain text."""
    text = _CODE_BLOCK.sub(" [code] ", content)
    text = _MARKERS.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1].rstrip() + "…"


def preview(
    message: MessageFacts,
    conversation: ConversationFacts,
    *,
    sender_name: str,
    conversation_name: str,
) -> str:
    """What a notification says of one message — never text of an encrypted conversation."""
    if message.kind == "system":
        action = CONCERNING_EVENTS.get(str((message.system_event or {}).get("type")), "")
        return f"{sender_name} {action} in {conversation_name}" if action else "Conversation updated"
    if conversation.encrypted:
        return "New message"
    text = plain_preview(message.content)
    if text:
        return text
    if message.attachment_names:
        count = len(message.attachment_names)
        return f"📎 {message.attachment_names[0]}" + (f" and {count - 1} more" if count > 1 else "")
    return "New message"
