"""Reading what the notification rules need, as the plain records of ``rules``.

Synchronous functions of one ``Connection``: the jobs run them through ``Database.read_sync``
or inside ``Database.write`` (one hand-off per job step on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from parley.notifications.rules import (
    ConversationFacts,
    MessageFacts,
    RecipientFacts,
    ThreadFollow,
)
from parley.services.message_records import read_messages
from parley.services.notification_settings import NotifyLevel, read_defaults
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages, thread_follows

# An encrypted conversation (DESIGN §6.1) says so in ``conversations.encrypted``; until the
# schema has that column, no conversation is encrypted.
_ENCRYPTED = conversations.c.get("encrypted")


def read_message_facts(conn: Connection, message_ids: Iterable[str]) -> dict[str, MessageFacts]:
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    # No URLs: notifications carry text, never files.
    found = read_messages(conn, select(messages).where(messages.c.id.in_(ids)), urls=None)
    return {
        m.id: MessageFacts(
            id=m.id,
            conversation_id=m.conversation_id,
            seq=m.seq,
            sender_id=m.sender_id,
            kind=m.kind,
            content=m.content,
            mentions=m.mentions,
            system_event=m.system_event,
            created_at=m.created_at,
            deleted=m.deleted,
            attachment_names=tuple(str(a.get("name", "file")) for a in m.attachments),
            thread_root_id=m.thread_root_id if not m.in_conversation else None,
        )
        for m in found
    }


def read_thread_follows(
    conn: Connection, messages_: Iterable[MessageFacts], user_ids: Iterable[str]
) -> dict[tuple[str, str], ThreadFollow]:
    """(root id, user id) → that user's state of the thread, for the thread-only replies
    among ``messages_``."""
    roots = sorted({m.thread_root_id for m in messages_ if m.thread_root_id})
    users_ = sorted(set(user_ids))
    if not roots or not users_:
        return {}
    rows = conn.execute(
        select(
            thread_follows.c.root_id,
            thread_follows.c.user_id,
            thread_follows.c.following,
            thread_follows.c.last_read_seq,
        ).where(thread_follows.c.root_id.in_(roots), thread_follows.c.user_id.in_(users_))
    )
    return {
        (row.root_id, row.user_id): ThreadFollow(bool(row.following), int(row.last_read_seq))
        for row in rows
    }


def read_conversation_facts(
    conn: Connection, conversation_ids: Iterable[str]
) -> dict[str, ConversationFacts]:
    ids = sorted(set(conversation_ids))
    if not ids:
        return {}
    columns: list[Any] = [conversations.c.id, conversations.c.type, conversations.c.name]
    if _ENCRYPTED is not None:
        columns.append(_ENCRYPTED.label("encrypted"))
    rows = conn.execute(select(*columns).where(conversations.c.id.in_(ids)))
    return {
        row.id: ConversationFacts(
            row.id, row.type, row.name, bool(row.encrypted) if _ENCRYPTED is not None else False
        )
        for row in rows
    }


def read_recipients(
    conn: Connection, conversation_ids: Iterable[str], user_ids: Iterable[str] | None = None
) -> dict[tuple[str, str], RecipientFacts]:
    """(conversation id, user id) → the member's facts, with the effective level: their
    own for the conversation, else their default. Only current members appear."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return {}
    query = select(
        members.c.conversation_id,
        members.c.user_id,
        members.c.last_read_seq,
        members.c.notify,
        members.c.muted_until,
    ).where(members.c.conversation_id.in_(ids))
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        query = query.where(members.c.user_id.in_(wanted))
    rows = list(conn.execute(query))
    defaults = read_defaults(conn, sorted({row.user_id for row in rows}))
    return {
        (row.conversation_id, row.user_id): RecipientFacts(
            user_id=row.user_id,
            last_read_seq=int(row.last_read_seq),
            level=NotifyLevel(row.notify) if row.notify else defaults[row.user_id].notify_default,
            muted_until=row.muted_until,
        )
        for row in rows
    }


def read_display_names(conn: Connection, user_ids: Iterable[str | None]) -> dict[str, str]:
    ids = sorted({uid for uid in user_ids if uid})
    if not ids:
        return {}
    rows = conn.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


def actor_of(message: MessageFacts) -> str | None:
    """Who a message is from: its sender, or the person who made a system change."""
    if message.sender_id:
        return message.sender_id
    actor = (message.system_event or {}).get("actor_id")
    return actor if isinstance(actor, str) else None


def conversation_title(
    conversation: ConversationFacts, names: dict[str, str], other_id: str | None
) -> str:
    """A group's name; for a direct conversation, the other person's name."""
    if conversation.is_direct:
        return names.get(other_id or "", "Direct message")
    return conversation.name or "Group"


def due(created_at: datetime, delay_seconds: float) -> datetime:
    return created_at + timedelta(seconds=delay_seconds)
