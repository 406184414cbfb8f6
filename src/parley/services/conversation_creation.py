"""Creating conversations: the one direct conversation of a pair (notes to self included)
and groups, with their first members and the ``conversation.created`` event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Blocked, Forbidden, NotFound, SlugTaken, ValidationFailed
from parley.ids import new_id
from parley.services.access import blocked_any, blocked_between, insert_system_message, member_ids
from parley.services.contacts import are_contacts
from parley.services.conversation_base import existing_users
from parley.services.conversation_encryption import ConversationEncryption
from parley.services.conversation_rules import clean_name, clean_slug, clean_topic, clean_visibility, direct_key
from parley.services.conversation_views import MemberView, shared_views
from parley.services.events import Event
from parley.store.tables.conversations import conversations
from parley.wire.events import EventType


class ConversationCreation(ConversationEncryption):
    # On ``ConversationEncryption``: a new conversation's encryption follows ``PARLEY_E2EE``,
    # and asking for an encrypted DM that exists unencrypted switches it on.

    async def create_direct(
        self, user_id: str, other_id: str, *, encrypted: bool | None = None
    ) -> tuple[MemberView, bool]:
        """The one direct conversation of the pair, created if needed. A user may open a
        direct conversation with themself (notes to self). Asking for an encrypted one when
        the pair's conversation exists unencrypted switches it on."""
        encrypt = self.encryption_for_new(encrypted)
        key = direct_key(user_id, other_id)
        async with self._db.read() as conn:
            existing = (
                await conn.execute(
                    select(conversations.c.id, conversations.c.encrypted).where(
                        conversations.c.direct_key == key
                    )
                )
            ).first()
        if existing is not None:
            if encrypted and not existing.encrypted:
                await self.switch_on_encryption(user_id, existing.id)
            return await self.get(user_id, existing.id), False
        now = utcnow()
        conversation_id = new_id()
        try:
            async with self._db.transaction() as conn:
                if not await existing_users(conn, {other_id}):
                    raise NotFound("No such user")
                if other_id != user_id:
                    if await blocked_between(conn, user_id, other_id):
                        raise Blocked()
                    if self._limits.dm_requires_contact and not await are_contacts(
                        conn, user_id, other_id
                    ):
                        raise Forbidden("Direct messages need an accepted contact first")
                await self._insert_conversation(
                    conn, conversation_id, "direct", user_id, now, direct=key, encrypted=encrypt
                )
                await self._insert_members(
                    conn, conversation_id, {user_id: "member", other_id: "member"}, now
                )
        except IntegrityError:
            # Both sides opened the DM at the same moment; the other insert won.
            async with self._db.read() as conn:
                row = (
                    await conn.execute(
                        select(conversations.c.id).where(conversations.c.direct_key == key)
                    )
                ).one()
            return await self.get(user_id, row.id), False
        await self._announce_created(conversation_id)
        return await self.get(user_id, conversation_id), True

    async def create_group(
        self,
        user_id: str,
        name: str,
        member_ids_: list[str],
        *,
        slug: str | None = None,
        topic: str = "",
        visibility: str = "private",
        encrypted: bool | None = None,
    ) -> MemberView:
        encrypt = self.encryption_for_new(encrypted)
        clean = clean_name(name)
        visible_as = clean_visibility(visibility)
        clean_slug_ = clean_slug(slug) if slug else None
        clean_topic_ = clean_topic(topic)
        invited = set(member_ids_) - {user_id}
        if len(invited) + 1 > self._limits.max_group_members:
            raise ValidationFailed.field(
                "member_ids", f"a group has at most {self._limits.max_group_members} members"
            )
        now = utcnow()
        conversation_id = new_id()
        try:
            async with self._db.transaction() as conn:
                missing = invited - await existing_users(conn, invited)
                if missing:
                    raise ValidationFailed.field("member_ids", f"unknown users: {sorted(missing)}")
                if await blocked_any(conn, user_id, invited):
                    raise Blocked("You cannot add a user you have blocked or who blocked you")
                await self._insert_conversation(
                    conn,
                    conversation_id,
                    "group",
                    user_id,
                    now,
                    name=clean,
                    slug=clean_slug_,
                    topic=clean_topic_,
                    visibility=visible_as,
                    encrypted=encrypt,
                )
                roles = {uid: "member" for uid in invited} | {user_id: "owner"}
                await self._insert_members(conn, conversation_id, roles, now)
                await insert_system_message(
                    conn,
                    conversation_id,
                    {"type": "conversation.created", "actor_id": user_id, "name": clean}
                    | ({"encrypted": True} if encrypt else {}),
                    now,
                )
        except IntegrityError:
            raise SlugTaken() from None
        await self._announce_created(conversation_id)
        return await self.get(user_id, conversation_id)

    async def _insert_conversation(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        kind: str,
        creator: str,
        now: datetime,
        *,
        direct: str | None = None,
        name: str | None = None,
        slug: str | None = None,
        topic: str = "",
        visibility: str = "private",
        encrypted: bool = False,
    ) -> None:
        await conn.execute(
            insert(conversations).values(
                visibility=visibility,
                encrypted=encrypted,
                id=conversation_id,
                type=kind,
                name=name,
                slug=slug,
                topic=topic,
                direct_key=direct,
                created_by=creator,
                created_at=now,
                updated_at=now,
                last_seq=0,
                last_activity_at=now,
            )
        )

    async def _announce_created(self, conversation_id: str) -> None:
        async with self._db.read() as conn:
            view = (await shared_views(conn, [conversation_id], urls=self._urls))[conversation_id]
            audience = await member_ids(conn, conversation_id)
        await self._events.emit(
            [
                Event(
                    EventType.CONVERSATION_CREATED,
                    {"conversation_id": conversation_id, "seq": view.last_seq, "conversation": view.to_public()},
                    user_ids=tuple(audience),
                )
            ]
        )
