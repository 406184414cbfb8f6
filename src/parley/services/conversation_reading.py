"""Reading conversations: a user's list, one by id or slug, and its members with their
read and delivery watermarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from parley.errors import NotFound
from parley.services.access import CONVERSATION_NOT_FOUND, membership
from parley.services.conversation_base import ConversationBase
from parley.services.conversation_views import MEMBER_PROFILE, MemberPreview, MemberView, member_views
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members


@dataclass(frozen=True, slots=True)
class Member(MemberPreview):
    """One member of a conversation, with their watermarks."""

    last_read_seq: int
    last_delivered_seq: int

    @classmethod
    def from_row(cls, row: Any) -> Member:
        preview = MemberPreview.from_row(row)
        return cls(
            preview.user_id,
            preview.username,
            preview.display_name,
            preview.is_bot,
            preview.avatar,
            preview.profile_version,
            preview.role,
            row.last_read_seq,
            row.last_delivered_seq,
        )

    def to_public(self) -> dict[str, Any]:
        return MemberPreview.to_public(self) | {
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
                    members.c.last_read_seq,
                    members.c.last_delivered_seq,
                    *MEMBER_PROFILE,
                )
                .join(users, users.c.id == members.c.user_id)
                .where(members.c.conversation_id == conversation_id)
                .order_by(members.c.joined_at, members.c.user_id)
            )
            return [Member.from_row(row) for row in rows]
