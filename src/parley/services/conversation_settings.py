"""What a group's admins — or a site admin — change about a conversation as a whole: name,
topic, slug and visibility, its picture, archiving, and deleting it."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from parley.clock import utcnow
from parley.errors import Forbidden, NotFound, SlugTaken
from parley.services.access import (
    CONVERSATION_NOT_FOUND,
    insert_system_message,
    member_ids,
    membership,
    require_admin,
)
from parley.services.accounts import group_avatar_urls
from parley.services.conversation_base import ConversationBase
from parley.services.conversation_rules import clean_name, clean_slug, clean_topic, clean_visibility
from parley.services.conversation_views import MemberView
from parley.services.events import Event
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations
from parley.store.tables.integrations import bots, webhooks
from parley.wire.events import EventType

log = logging.getLogger(__name__)

# ``bots.kind`` of a webhook's own bot (``parley.integrations.bots.WEBHOOK_BOT``; the
# integrations build on this module, not the other way round).
WEBHOOK_BOT_KIND = "webhook"


class ConversationSettings(ConversationBase):
    async def update(
        self,
        user_id: str,
        conversation_id: str,
        *,
        name: str | None = None,
        topic: str | None = None,
        slug: str | None = None,
        visibility: str | None = None,
    ) -> MemberView:
        values: dict[str, Any] = {}
        if visibility is not None:
            values["visibility"] = clean_visibility(visibility)
        if name is not None:
            values["name"] = clean_name(name)
        if topic is not None:
            values["topic"] = clean_topic(topic)
        if slug is not None:
            values["slug"] = clean_slug(slug) if slug else None
        if not values:
            return await self.get(user_id, conversation_id)
        now = utcnow()
        try:
            async with self._db.transaction() as conn:
                member = await membership(conn, conversation_id, user_id)
                require_admin(member)
                await conn.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation_id)
                    .values(updated_at=now, **values)
                )
                message_id = await insert_system_message(
                    conn,
                    conversation_id,
                    {"type": "conversation.updated", "actor_id": user_id, "changes": values},
                    now,
                )
        except IntegrityError:
            raise SlugTaken() from None
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": values}
        )
        return await self.get(user_id, conversation_id)

    async def announce_change(self, conversation_id: str, message_id: str, changes: dict[str, Any]) -> None:
        """A settings change recorded elsewhere (its system message committed), announced
        like the changes made here: the system message, then ``conversation.updated``."""
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": changes}
        )

    async def set_archived(self, actor_id: str, conversation_id: str, archived: bool) -> bool:
        """Archive (read-only: sends refused with ``CONVERSATION_ARCHIVED``, history still
        readable) or unarchive a conversation — a site admin's act (DESIGN §6.3; the caller
        checks the site role). Members get ``conversation.updated`` with
        ``{"archived": ...}``. False when it already was so (nothing changes)."""
        now = utcnow()
        async with self._db.transaction() as conn:
            state = conversations.c.archived_at.is_(None) if archived else conversations.c.archived_at.is_not(None)
            # Under the conversation's row lock, as a send's batch reads the mark: no message
            # commits after an archive.
            changed = (
                await conn.execute(
                    update(conversations)
                    .where(conversations.c.id == conversation_id, state)
                    .values(archived_at=now if archived else None, updated_at=now)
                )
            ).rowcount
            if changed != 1:
                exists = await conn.execute(
                    select(conversations.c.id).where(conversations.c.id == conversation_id)
                )
                if exists.first() is None:
                    raise NotFound(CONVERSATION_NOT_FOUND)
                return False
            changes = {"archived": archived}
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {"type": "conversation.updated", "actor_id": actor_id, "changes": changes},
                now,
            )
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": changes}
        )
        return True

    async def switch_avatar(self, user_id: str, conversation_id: str, key: str | None) -> str | None:
        """Make ``key`` the group's picture (None: remove it) — its admins only; the key it
        replaced (whose blobs the caller deletes). Members get ``conversation.updated`` with
        ``{"avatar": urls}``. Concurrent changes: the last commit wins, each returns what
        it replaced, so every loser's blobs go too."""
        now = utcnow()
        async with self._db.transaction() as conn:
            require_admin(await membership(conn, conversation_id, user_id))
            current = select(conversations.c.avatar_key).where(conversations.c.id == conversation_id)
            if conn.dialect.name == "postgresql":  # SQLite's write transactions are serial
                current = current.with_for_update()
            old: str | None = (await conn.execute(current)).scalar()
            if old is None and key is None:
                raise NotFound("The group has no picture", code="NO_PICTURE")
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(avatar_key=key, updated_at=now)
            )
            changes = {"avatar": group_avatar_urls(conversation_id, key)}
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {"type": "conversation.updated", "actor_id": user_id, "changes": changes},
                now,
            )
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": changes}
        )
        return old

    async def check_group_admin(self, user_id: str, conversation_id: str) -> None:
        """Raise unless ``user_id`` is an owner or admin of the group (before heavy work)."""
        async with self._db.read() as conn:
            require_admin(await membership(conn, conversation_id, user_id))

    async def delete(self, user_id: str, conversation_id: str, *, as_site_admin: bool = False) -> None:
        """Delete a group (its owner), or any conversation (``as_site_admin``: a site
        administrator, DESIGN §6.3 — the caller checks the site role)."""
        async with self._db.transaction() as conn:
            if as_site_admin:
                exists = await conn.execute(
                    select(conversations.c.id).where(conversations.c.id == conversation_id)
                )
                if exists.first() is None:
                    raise NotFound(CONVERSATION_NOT_FOUND)
            else:
                member = await membership(conn, conversation_id, user_id)
                if member.is_direct or member.role != "owner":
                    raise Forbidden("Only the group's owner can delete it")
            audience = await member_ids(conn, conversation_id)
            # The incoming webhooks' own bots (DESIGN §6.6) post nowhere else: they go with
            # the conversation, deactivated as deleting the webhook does (the webhook rows
            # themselves cascade), rather than being left as orphaned accounts.
            hook_bots = select(webhooks.c.bot_user_id).join(
                bots, bots.c.user_id == webhooks.c.bot_user_id
            ).where(webhooks.c.conversation_id == conversation_id, bots.c.kind == WEBHOOK_BOT_KIND)
            orphans = [row.bot_user_id for row in await conn.execute(hook_bots)]
            picture = (
                await conn.execute(
                    delete(conversations)
                    .where(conversations.c.id == conversation_id)
                    .returning(conversations.c.avatar_key)
                )
            ).scalar()
            if orphans:
                now = utcnow()
                await conn.execute(
                    update(users)
                    .where(users.c.id.in_(orphans), users.c.deactivated_at.is_(None))
                    .values(deactivated_at=now, updated_at=now)
                )
        for hook in self._on_deleted:
            try:
                await hook(conversation_id, picture)
            except Exception:  # the deletion stands; a leftover blob is only space
                log.exception("cleanup after a conversation's deletion failed")
        await self._events.emit(
            [
                Event(
                    EventType.CONVERSATION_DELETED,
                    {"conversation_id": conversation_id, "actor_id": user_id},
                    user_ids=tuple(audience),
                )
            ]
        )
