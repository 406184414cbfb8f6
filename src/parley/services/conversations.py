"""Conversations and membership: direct (one per pair) and group (roles, up to N members).

Every membership or settings change is also a system message in the conversation, so it
takes a seq, appears in history and is resumed through ``changes`` like any message.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import (
    Blocked,
    Conflict,
    E2eeDisabled,
    Forbidden,
    GroupFull,
    NotFound,
    SlugTaken,
    ValidationFailed,
)
from parley.ids import new_id
from parley.services.access import (
    CONVERSATION_NOT_FOUND,
    ROLE_RANK,
    blocked_any,
    blocked_between,
    insert_system_message,
    lock_conversation,
    member_ids,
    membership,
    require_admin,
)
from parley.services.accounts import avatar_urls, group_avatar_urls
from parley.services.attachment_urls import AttachmentUrls
from parley.services.audit import Action, write_entry
from parley.services.contacts import are_contacts
from parley.services.conversation_views import MemberView, member_views, shared_views
from parley.services.events import Event, EventSink
from parley.services.message_records import load_message
from parley.store.db import Database
from parley.store.tables import bots, conversations, members, users, webhooks
from parley.wire.events import EventType

log = logging.getLogger(__name__)

# ``bots.kind`` of a webhook's own bot (``parley.integrations.bots.WEBHOOK_BOT``; the
# integrations build on this module, not the other way round).
WEBHOOK_BOT_KIND = "webhook"

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MAX_NAME = 100
MAX_TOPIC = 500
ROLES = ("member", "admin", "owner")
# A public group is listed in the directory and anyone may join it (DESIGN §6.3).
VISIBILITIES = ("private", "public")


@dataclass(frozen=True, slots=True)
class ConversationLimits:
    max_group_members: int
    dm_requires_contact: bool
    # PARLEY_E2EE (DESIGN §6.1): "off" | "optional" | "required".
    e2ee: str = "optional"


def clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed.field("name", f"must be 1-{MAX_NAME} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationFailed.field("name", "must not contain control characters")
    return name


def clean_slug(raw: str) -> str:
    slug = raw.strip().lower()
    if not SLUG_PATTERN.fullmatch(slug):
        raise ValidationFailed.field(
            "slug", "must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )
    return slug


def clean_topic(raw: str) -> str:
    topic = unicodedata.normalize("NFC", raw).strip()
    if len(topic) > MAX_TOPIC:
        raise ValidationFailed.field("topic", f"must be at most {MAX_TOPIC} characters")
    return topic


def clean_visibility(raw: str) -> str:
    if raw not in VISIBILITIES:
        raise ValidationFailed.field("visibility", "must be 'private' or 'public'")
    return raw


def direct_key(user_a: str, user_b: str) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


async def _existing_users(conn: AsyncConnection, user_ids: set[str]) -> set[str]:
    if not user_ids:
        return set()
    rows = await conn.execute(
        select(users.c.id).where(users.c.id.in_(user_ids), users.c.deactivated_at.is_(None))
    )
    return {row.id for row in rows}


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


class Conversations:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        limits: ConversationLimits,
        urls: AttachmentUrls | None,
    ) -> None:
        self._db = db
        self._events = events
        self._limits = limits
        self._urls = urls  # signs the attachment URLs of views' last messages
        # Called after a conversation is deleted, with its id and picture key (the picture's
        # blobs live in the media store, which this service does not know: services.avatars).
        self._on_deleted: list[Callable[[str, str | None], Awaitable[None]]] = []

    def on_deleted(self, hook: Callable[[str, str | None], Awaitable[None]]) -> None:
        self._on_deleted.append(hook)

    # --- reading

    async def list_for(self, user_id: str) -> list[MemberView]:
        async with self._db.read_replica() as conn:
            return await member_views(conn, user_id, urls=self._urls)

    async def get(self, user_id: str, conversation_id: str) -> MemberView:
        async with self._db.read() as conn:
            found = await member_views(conn, user_id, [conversation_id], urls=self._urls)
        if not found:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return found[0]

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

    # --- creating

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
                if not await _existing_users(conn, {other_id}):
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
                missing = invited - await _existing_users(conn, invited)
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

    async def _insert_members(
        self, conn: AsyncConnection, conversation_id: str, roles: dict[str, str], now: datetime
    ) -> None:
        await conn.execute(
            insert(members),
            [
                {
                    "conversation_id": conversation_id,
                    "user_id": uid,
                    "role": role,
                    "joined_at": now,
                    "last_read_seq": 0,
                    "last_delivered_seq": 0,
                }
                for uid, role in roles.items()
            ],
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

    # --- changing

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

    async def _view_in(self, conn: AsyncConnection, user_id: str, conversation_id: str) -> MemberView:
        found = await member_views(conn, user_id, [conversation_id], urls=self._urls)
        if not found:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return found[0]

    async def refuse_switch_off(self, user_id: str, conversation_id: str) -> None:
        """``encrypted: false``: nothing to do for a plain conversation, refused for an
        encrypted one (end-to-end encryption is never switched off)."""
        view = await self.get(user_id, conversation_id)
        if view.shared.encrypted:
            raise Conflict(
                "End-to-end encryption cannot be switched off", code="ENCRYPTION_PERMANENT"
            )

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
                missing = new - await _existing_users(conn, new)
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

    async def announce_change(self, conversation_id: str, message_id: str, changes: dict[str, Any]) -> None:
        """A settings change recorded elsewhere (its system message committed), announced
        like the changes made here: the system message, then ``conversation.updated``."""
        await self._emit_with_system_message(
            conversation_id, message_id, EventType.CONVERSATION_UPDATED, {"changes": changes}
        )

    async def _emit_with_system_message(
        self,
        conversation_id: str,
        message_id: str,
        event_type: EventType,
        data: dict[str, Any],
        *,
        extra_users: list[str] | None = None,
    ) -> None:
        """Emit the system message (which carries the seq) and the typed change event."""
        async with self._db.read() as conn:
            message = await load_message(conn, message_id, urls=self._urls)
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(members)
                    .where(members.c.conversation_id == conversation_id)
                )
            ).scalar_one()
        if message is None:
            return
        payload = message.to_public()
        users_ = tuple(extra_users or ())
        await self._events.emit(
            [
                Event(
                    EventType.MESSAGE_CREATED,
                    {"conversation_id": conversation_id, "seq": message.seq, "message": payload},
                    conversation_id=conversation_id,
                    user_ids=users_,
                ),
                Event(
                    event_type,
                    {"conversation_id": conversation_id, "seq": message.seq, "member_count": count}
                    | data,
                    conversation_id=conversation_id,
                    user_ids=users_,
                ),
            ]
        )
