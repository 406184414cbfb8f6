"""Who is in a group and with what role: adding members, joining by oneself (directory,
invite link), removing and leaving (ownership passes on), and changing roles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Blocked, Forbidden, GroupFull, NotFound, ValidationFailed
from parley.services.access import (
    CONVERSATION_NOT_FOUND,
    ROLE_RANK,
    blocked_any,
    insert_system_message,
    lock_conversation,
    member_ids,
    membership,
    require_admin,
)
from parley.services.conversation_base import ConversationBase, existing_users
from parley.services.conversation_rules import ROLES
from parley.store.tables.conversations import conversations, members
from parley.wire.events import EventType


class ConversationMembership(ConversationBase):
    async def add_members(
        self, user_id: str, conversation_id: str, user_ids: list[str]
    ) -> dict[str, Any]:
        now = utcnow()
        async with self._db.transaction() as conn:
            member = await membership(conn, conversation_id, user_id)
            require_admin(member)
            current = set(await member_ids(conn, conversation_id))
            new = set(user_ids) - current
            if not new:
                added: list[str] = []
            else:
                missing = new - await existing_users(conn, new)
                if missing:
                    raise ValidationFailed.field("user_ids", f"unknown users: {sorted(missing)}")
                if len(current) + len(new) > self._limits.max_group_members:
                    raise GroupFull()
                guards = {user_id} | ({member.created_by} if member.created_by else set())
                for guard in guards:
                    if await blocked_any(conn, guard, new):
                        raise Blocked("A user you tried to add is blocked")
                await self._insert_members(conn, conversation_id, dict.fromkeys(new, "member"), now)
                added = sorted(new)
                message_id = await insert_system_message(
                    conn,
                    conversation_id,
                    {"type": "member.added", "actor_id": user_id, "user_ids": added},
                    now,
                )
        if added:
            await self._emit_with_system_message(
                conversation_id,
                message_id,
                EventType.MEMBER_ADDED,
                {"user_ids": added, "actor_id": user_id},
                extra_users=added,
            )
        return {"added": added}

    async def admit(
        self, conn: AsyncConnection, conversation_id: str, user_id: str, now: datetime, *, via: str
    ) -> str | None:
        """Make ``user_id`` a member of a group they join by themself (``via`` "directory"
        or "invite"), inside the caller's transaction: the id of the system line, or None
        when they are a member already. Takes the conversation's lock first, so
        concurrent joins count the group's size one at a time."""
        await lock_conversation(conn, conversation_id)
        row = (
            await conn.execute(
                select(conversations.c.type, conversations.c.created_by).where(
                    conversations.c.id == conversation_id
                )
            )
        ).first()
        if row is None or row.type != "group":
            raise NotFound(CONVERSATION_NOT_FOUND)
        current = set(await member_ids(conn, conversation_id))
        if user_id in current:
            return None
        if len(current) + 1 > self._limits.max_group_members:
            raise GroupFull()
        if row.created_by and await blocked_any(conn, row.created_by, {user_id}):
            raise Blocked("You cannot join this group")
        await self._insert_members(conn, conversation_id, {user_id: "member"}, now)
        return await insert_system_message(
            conn,
            conversation_id,
            {"type": "member.joined", "actor_id": user_id, "user_ids": [user_id], "via": via},
            now,
        )

    async def announce_joined(self, conversation_id: str, message_id: str, user_id: str) -> None:
        """The events of ``admit``, after its commit: the system line and ``member.added``
        (the new member's sessions hear it too, and subscribe)."""
        await self._emit_with_system_message(
            conversation_id,
            message_id,
            EventType.MEMBER_ADDED,
            {"user_ids": [user_id], "actor_id": user_id},
            extra_users=[user_id],
        )

    async def remove_member(self, user_id: str, conversation_id: str, target_id: str) -> None:
        """Remove ``target_id`` (admins), or leave when it is the caller. When the owner
        leaves, ownership passes to the longest-standing admin, else member."""
        now = utcnow()
        async with self._db.transaction() as conn:
            member = await membership(conn, conversation_id, user_id)
            if member.is_direct:
                raise Forbidden("You cannot leave or change a direct conversation")
            if target_id != user_id:
                require_admin(member)
                target = await membership(conn, conversation_id, target_id)
                if ROLE_RANK[target.role] >= ROLE_RANK[member.role]:
                    raise Forbidden("You can only remove members below your own role")
            else:
                target = member
            await conn.execute(
                delete(members).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == target_id
                )
            )
            new_owner = None
            if target.role == "owner":
                new_owner = await self._pass_ownership(conn, conversation_id)
            event_type = "member.left" if target_id == user_id else "member.removed"
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {
                    "type": event_type,
                    "actor_id": user_id,
                    "user_ids": [target_id],
                    "new_owner_id": new_owner,
                },
                now,
            )
        await self._emit_with_system_message(
            conversation_id,
            message_id,
            EventType.MEMBER_REMOVED,
            {"user_ids": [target_id], "actor_id": user_id, "new_owner_id": new_owner},
            extra_users=[target_id],
        )

    async def _pass_ownership(self, conn: AsyncConnection, conversation_id: str) -> str | None:
        heir = (
            await conn.execute(
                select(members.c.user_id)
                .where(members.c.conversation_id == conversation_id)
                .order_by((members.c.role == "admin").desc(), members.c.joined_at, members.c.user_id)
                .limit(1)
            )
        ).first()
        if heir is None:
            return None
        await conn.execute(
            update(members)
            .where(members.c.conversation_id == conversation_id, members.c.user_id == heir.user_id)
            .values(role="owner")
        )
        return str(heir.user_id)

    async def set_role(
        self, user_id: str, conversation_id: str, target_id: str, role: str
    ) -> None:
        """Owner only. Giving "owner" transfers ownership; the old owner becomes an admin."""
        if role not in ROLES:
            raise ValidationFailed.field("role", "must be one of member, admin, owner")
        now = utcnow()
        async with self._db.transaction() as conn:
            member = await membership(conn, conversation_id, user_id)
            if member.is_direct or member.role != "owner":
                raise Forbidden("Only the group's owner can change roles")
            target = await membership(conn, conversation_id, target_id)
            if target_id == user_id:
                raise ValidationFailed.field("user_id", "give ownership to someone else instead")
            if target.role == role:
                return
            await conn.execute(
                update(members)
                .where(members.c.conversation_id == conversation_id, members.c.user_id == target_id)
                .values(role=role)
            )
            if role == "owner":
                await conn.execute(
                    update(members)
                    .where(members.c.conversation_id == conversation_id, members.c.user_id == user_id)
                    .values(role="admin")
                )
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {"type": "member.role", "actor_id": user_id, "user_ids": [target_id], "role": role},
                now,
            )
        await self._emit_with_system_message(
            conversation_id,
            message_id,
            EventType.MEMBER_UPDATED,
            {"user_ids": [target_id], "role": role, "actor_id": user_id},
        )
