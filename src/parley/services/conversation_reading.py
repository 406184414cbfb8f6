"""Reading conversations: a user's list, one by id or slug, and its members with their
read and delivery watermarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from parley.errors import NotFound
from parley.services.access import CONVERSATION_NOT_FOUND, membership
from parley.services.accounts import avatar_urls
from parley.services.conversation_base import ConversationBase
from parley.services.conversation_views import MemberView, member_views
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a conversation, with their watermarks."""

    user_id: str
    username: str
    display_name: str
    is_bot: bool
    avatar: dict[str, str] | None  # the profile picture's URLs (None: initials)
    role: str
    last_read_seq: int
    last_delivered_seq: int

    def to_public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "display_name": self.display_name,
            "is_bot": self.is_bot,
            "avatar": self.avatar,
            "role": self.role,
            "last_read_seq": self.last_read_seq,
            "last_delivered_seq": self.last_delivered_seq,
        }


class ConversationReading(ConversationBase):
    async def list_for(self, user_id: str) -> list[MemberView]:
        async with self._db.read_replica() as conn:
            return await member_views(conn, user_id, urls=self._urls)

    async def get_by_slug(self, user_id: str, slug: str) -> MemberView:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(conversations.c.id).where(conversations.c.slug == slug.lower())
                )
            ).first()
            found = await member_views(conn, user_id, [row.id], urls=self._urls) if row else []
        if not found:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return found[0]

    async def members(self, user_id: str, conversation_id: str) -> list[Member]:
        async with self._db.read() as conn:
            await membership(conn, conversation_id, user_id)
            rows = await conn.execute(
                select(
                    members.c.user_id,
                    members.c.role,
                    members.c.joined_at,
                    members.c.last_read_seq,
                    members.c.last_delivered_seq,
                    users.c.username,
                    users.c.display_name,
                    users.c.is_bot,
                    users.c.avatar_key,
                )
                .join(users, users.c.id == members.c.user_id)
                .where(members.c.conversation_id == conversation_id)
                .order_by(members.c.joined_at, members.c.user_id)
            )
            return [
                Member(
                    r.user_id,
                    r.username,
                    r.display_name,
                    bool(r.is_bot),
                    avatar_urls(r.user_id, r.avatar_key),
                    r.role,
                    r.last_read_seq,
                    r.last_delivered_seq,
                )
                for r in rows
            ]
