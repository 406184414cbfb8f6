"""Conversation payloads: the shared part every member sees, plus the caller's own state
(role, watermarks, unread count). Built for many conversations in a handful of queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat
from parley.services.message_records import load_messages
from parley.store.tables import conversations, members, messages, users

MEMBER_PREVIEW = 5


def unread_condition(user_id: str) -> Any:
    """Messages a member has not read: after their read mark, not their own, not deleted."""
    return and_(
        messages.c.seq > members.c.last_read_seq,
        messages.c.kind == "text",
        messages.c.deleted_at.is_(None),
        or_(messages.c.sender_id.is_(None), messages.c.sender_id != user_id),
    )


async def shared_views(
    conn: AsyncConnection, conversation_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """What every member sees of each conversation: settings, member count and preview,
    ``last_seq`` and the last message."""
    if not conversation_ids:
        return {}
    ids = list(conversation_ids)
    views: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(select(conversations).where(conversations.c.id.in_(ids))):
        views[row.id] = {
            "id": row.id,
            "type": row.type,
            "name": row.name,
            "slug": row.slug,
            "topic": row.topic,
            "created_by": row.created_by,
            "created_at": isoformat(row.created_at),
            "updated_at": isoformat(row.updated_at),
            "last_activity_at": isoformat(row.last_activity_at),
            "last_seq": row.last_seq,
            "member_count": 0,
            "members": [],
            "last_message": None,
        }
    for row in await conn.execute(
        select(members.c.conversation_id, func.count().label("n"))
        .where(members.c.conversation_id.in_(ids))
        .group_by(members.c.conversation_id)
    ):
        views[row.conversation_id]["member_count"] = row.n
    ranked = (
        select(
            members.c.conversation_id,
            members.c.user_id,
            members.c.role,
            func.row_number()
            .over(
                partition_by=members.c.conversation_id,
                order_by=(members.c.joined_at, members.c.user_id),
            )
            .label("position"),
        )
        .where(members.c.conversation_id.in_(ids))
        .subquery()
    )
    for row in await conn.execute(
        select(ranked, users.c.username, users.c.display_name)
        .join(users, users.c.id == ranked.c.user_id)
        .where(ranked.c.position <= MEMBER_PREVIEW)
        .order_by(ranked.c.conversation_id, ranked.c.position)
    ):
        views[row.conversation_id]["members"].append(
            {
                "user_id": row.user_id,
                "username": row.username,
                "display_name": row.display_name,
                "role": row.role,
            }
        )
    latest = (
        select(messages.c.conversation_id, func.max(messages.c.seq).label("seq"))
        .where(messages.c.conversation_id.in_(ids))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    for message in await load_messages(
        conn,
        select(messages).where(
            tuple_(messages.c.conversation_id, messages.c.seq).in_(
                select(latest.c.conversation_id, latest.c.seq)
            )
        ),
    ):
        views[message.conversation_id]["last_message"] = message.to_public()
    return views


async def member_views(
    conn: AsyncConnection, user_id: str, conversation_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The caller's conversations (all, or those given), most recently active first."""
    query = (
        select(
            members.c.conversation_id,
            members.c.role,
            members.c.last_read_seq,
            members.c.last_delivered_seq,
        )
        .join(conversations, conversations.c.id == members.c.conversation_id)
        .where(members.c.user_id == user_id)
        .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
    )
    if conversation_ids is not None:
        query = query.where(members.c.conversation_id.in_(list(conversation_ids)))
    mine = list(await conn.execute(query))
    ids = [row.conversation_id for row in mine]
    shared = await shared_views(conn, ids)
    unread: dict[str, int] = {}
    if ids:
        for row in await conn.execute(
            select(messages.c.conversation_id, func.count().label("n"))
            .join(
                members,
                and_(
                    members.c.conversation_id == messages.c.conversation_id,
                    members.c.user_id == user_id,
                ),
            )
            .where(messages.c.conversation_id.in_(ids), unread_condition(user_id))
            .group_by(messages.c.conversation_id)
        ):
            unread[row.conversation_id] = row.n
    return [
        shared[row.conversation_id]
        | {
            "role": row.role,
            "last_read_seq": row.last_read_seq,
            "last_delivered_seq": row.last_delivered_seq,
            "unread_count": unread.get(row.conversation_id, 0),
        }
        for row in mine
        if row.conversation_id in shared
    ]
