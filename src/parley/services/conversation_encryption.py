"""End-to-end encryption of a conversation (DESIGN §6.1): chosen when it is created under
``PARLEY_E2EE``, switched on later by its admins (either side of a DM), never switched off."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Conflict, E2eeDisabled, NotFound, ValidationFailed
from parley.services.access import (
    CONVERSATION_NOT_FOUND,
    insert_system_message,
    membership,
    require_admin,
)
from parley.services.audit import Action, write_entry
from parley.services.conversation_base import ConversationBase
from parley.services.conversation_views import MemberView, member_views
from parley.store.tables.conversations import conversations
from parley.wire.events import EventType


class ConversationEncryption(ConversationBase):
    def encryption_for_new(self, requested: bool | None) -> bool:
        """Whether a new conversation is end-to-end encrypted, under ``PARLEY_E2EE``."""
        if self._limits.e2ee == "off":
            if requested:
                raise E2eeDisabled()
            return False
        if self._limits.e2ee == "required":
            if requested is False:
                raise ValidationFailed.field(
                    "encrypted", "this server requires end-to-end encryption"
                )
            return True
        return bool(requested)

    async def switch_on_encryption(self, user_id: str, conversation_id: str) -> MemberView:
        """Make the conversation end-to-end encrypted from its next message on (DESIGN
        §6.1): a group's admins may, either side of a direct conversation may. It never
        switches off; switching on again changes nothing."""
        if self._limits.e2ee == "off":
            raise E2eeDisabled()
        now = utcnow()
        async with self._db.transaction() as conn:
            member = await membership(conn, conversation_id, user_id)
            if not member.is_direct:
                require_admin(member)
            # Under the conversation's row lock, as a send's batch reads the flag: every
            # message committed after this one is checked against it.
            flag = (
                await conn.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation_id, conversations.c.encrypted.is_(False))
                    .values(encrypted=True, updated_at=now)
                )
            ).rowcount
            if flag != 1:
                return await self._view_in(conn, user_id, conversation_id)
            changes = {"encrypted": True}
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {"type": "conversation.updated", "actor_id": user_id, "changes": changes},
                now,
            )
            # A security setting: who switched it on is audited with the switch itself.
            await write_entry(
                conn, Action.CONVERSATION_ENCRYPTED, actor_id=user_id, target_id=conversation_id
            )
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": changes}
        )
        return await self.get(user_id, conversation_id)

    async def refuse_switch_off(self, user_id: str, conversation_id: str) -> None:
        """``encrypted: false``: nothing to do for a plain conversation, refused for an
        encrypted one (end-to-end encryption is never switched off)."""
        view = await self.get(user_id, conversation_id)
        if view.shared.encrypted:
            raise Conflict(
                "End-to-end encryption cannot be switched off", code="ENCRYPTION_PERMANENT"
            )

    async def _view_in(self, conn: AsyncConnection, user_id: str, conversation_id: str) -> MemberView:
        found = await member_views(conn, user_id, [conversation_id], urls=self._urls)
        if not found:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return found[0]
