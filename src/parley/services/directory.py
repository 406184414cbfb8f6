"""Public groups (DESIGN §6.3): the directory and joining.

A group with ``visibility: "public"`` is listed by ``GET /api/v1/conversations/directory``
to every user, and anyone may join it with ``POST /api/v1/conversations/{id}/join``. A
private group stays invisible: joining it answers 404 like any conversation the caller is
not in (an invite link is the way in, ``services.invites``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from parley.clock import isoformat, utcnow
from parley.errors import NotFound, ValidationFailed
from parley.services.access import CONVERSATION_NOT_FOUND, is_member, lock_conversation
from parley.services.conversation_views import MemberView
from parley.services.conversations import Conversations
from parley.store.db import Database
from parley.store.tables.conversations import conversations, members

MAX_PAGE = 100
MAX_QUERY = 100
# Spelled as a literal, as the partial index ix_conversations_public is: a bound parameter
# does not match its WHERE, and the planner would read every conversation instead.
_PUBLIC = text("conversations.visibility = 'public'")
_MEMBER_COUNT = (
    select(func.count())
    .select_from(members)
    .where(members.c.conversation_id == conversations.c.id)
    .scalar_subquery()
)


def _like_pattern(text: str) -> str:
    """``text`` as a case-insensitive substring pattern, its LIKE wildcards escaped."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Directory:
    def __init__(self, db: Database, conversations_: Conversations) -> None:
        self._db = db
        self._conversations = conversations_

    async def list(self, user_id: str, *, q: str = "", limit: int = 50) -> dict[str, Any]:
        """Public groups, the most recently active first; ``q`` filters by name or topic."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_PAGE}")
        query_text = q.strip()
        if len(query_text) > MAX_QUERY:
            raise ValidationFailed.field("q", f"must be at most {MAX_QUERY} characters")
        mine = (
            select(members.c.conversation_id)
            .where(members.c.user_id == user_id, members.c.conversation_id == conversations.c.id)
            .exists()
        )
        query = (
            select(
                conversations.c.id,
                conversations.c.name,
                conversations.c.slug,
                conversations.c.topic,
                conversations.c.last_activity_at,
                _MEMBER_COUNT.label("member_count"),
                mine.label("joined"),
            )
            .where(_PUBLIC, conversations.c.type == "group")
            .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
            .limit(limit + 1)
        )
        if query_text:
            pattern = _like_pattern(query_text)
            query = query.where(
                func.lower(conversations.c.name).like(pattern, escape="\\")
                | func.lower(conversations.c.topic).like(pattern, escape="\\")
            )
        async with self._db.read() as conn:
            rows = list(await conn.execute(query))
        return {
            "conversations": [
                {
                    "id": r.id,
                    "name": r.name,
                    "slug": r.slug,
                    "topic": r.topic,
                    "member_count": r.member_count,
                    "last_activity_at": isoformat(r.last_activity_at),
                    "joined": bool(r.joined),
                }
                for r in rows[:limit]
            ],
            "has_more": len(rows) > limit,
        }

    async def join(self, user_id: str, conversation_id: str) -> tuple[MemberView, bool]:
        """Join a public group: its view for the caller, and whether they are new in it
        (joining twice changes nothing)."""
        now = utcnow()
        async with self._db.transaction() as conn:
            await lock_conversation(conn, conversation_id)  # see Conversations.admit
            public = (
                await conn.execute(
                    select(conversations.c.id).where(
                        conversations.c.id == conversation_id, conversations.c.visibility == "public"
                    )
                )
            ).first()
            already = await is_member(conn, conversation_id, user_id)
            if public is None and not already:
                raise NotFound(CONVERSATION_NOT_FOUND)
            line = (
                None
                if already
                else await self._conversations.admit(conn, conversation_id, user_id, now, via="directory")
            )
        if line is not None:
            await self._conversations.announce_joined(conversation_id, line, user_id)
        return await self._conversations.get(user_id, conversation_id), line is not None
