"""Conversation views: the shared part every member sees (:class:`SharedView`), plus the
caller's own state (:class:`MemberView`: role, watermarks, unread count). Records, built for
many conversations in a handful of queries; the edges call ``to_public``.

Synchronous (``read_shared_views``, ``read_member_views``), so that ``ready`` can run them
in one hand-off to a database thread (``Database.read_sync``); ``shared_views`` and
``member_views`` are the same functions for async code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.services.accounts import avatar_urls, group_avatar_urls
from parley.services.attachment_urls import AttachmentUrls
from parley.services.message_records import IN_CONVERSATION, Message, read_messages
from parley.store.one_of import one_of
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages

MEMBER_PREVIEW = 5


# What a member object shows of the user (selected joined to a ``members`` row).
MEMBER_PROFILE = (
    users.c.username,
    users.c.display_name,
    users.c.is_bot,
    users.c.avatar_key,
    users.c.profile_version,
)


@dataclass(frozen=True, slots=True)
class MemberPreview:
    """A member as the conversation list shows them: the public profile and the role."""

    user_id: str
    username: str
    display_name: str
    is_bot: bool
    avatar: dict[str, str] | None  # the profile picture's URLs (None: initials)
    profile_version: int  # see users.profile_version: the client keeps the highest
    role: str

    @classmethod
    def from_row(cls, row: Any) -> MemberPreview:
        """From a row with ``user_id``, ``role`` and the ``MEMBER_PROFILE`` columns."""
        return cls(
            row.user_id,
            row.username,
            row.display_name,
            bool(row.is_bot),
            avatar_urls(row.user_id, row.avatar_key),
            row.profile_version,
            row.role,
        )

    def to_public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "display_name": self.display_name,
            "is_bot": self.is_bot,
            "avatar": self.avatar,
            "profile_version": self.profile_version,
            "role": self.role,
        }


@dataclass(slots=True)
class SharedView:
    """What every member sees of a conversation. (Filled in by ``read_shared_views``
    step by step, hence not frozen; nothing changes it once returned.)"""

    id: str
    type: str
    name: str | None
    slug: str | None
    topic: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    last_seq: int
    # 'private' or 'public' (a group in the directory, DESIGN §6.3)
    visibility: str = "private"
    # Retention (DESIGN §6.4): NULL follows the site policy; every message at or below
    # expired_through_seq was deleted by it.
    retention_days: int | None = None
    legal_hold: bool = False
    expired_through_seq: int = 0
    # End-to-end encrypted (DESIGN §6.1): messages carry ciphertext, not content.
    encrypted: bool = False
    # Archived by a site admin (DESIGN §6.3): read-only, history still readable.
    archived_at: datetime | None = None
    # A group's picture's URLs (services.avatars); None: the initial is shown.
    avatar: dict[str, str] | None = None
    member_count: int = 0
    members: list[MemberPreview] = field(default_factory=list)
    last_message: Message | None = None

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "slug": self.slug,
            "topic": self.topic,
            "visibility": self.visibility,
            "created_by": self.created_by,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "last_activity_at": isoformat(self.last_activity_at),
            "last_seq": self.last_seq,
            "retention_days": self.retention_days,
            "legal_hold": self.legal_hold,
            "expired_through_seq": self.expired_through_seq,
            "encrypted": self.encrypted,
            "archived": self.archived_at is not None,
            "archived_at": isoformat(self.archived_at) if self.archived_at else None,
            "avatar": self.avatar,
            "member_count": self.member_count,
            "members": [member.to_public() for member in self.members],
            "last_message": self.last_message.to_public() if self.last_message else None,
        }


@dataclass(frozen=True, slots=True)
class MemberView:
    """A conversation as one member sees it: the shared view and their own state."""

    shared: SharedView
    role: str
    last_read_seq: int
    last_delivered_seq: int
    unread_count: int
    unread_mentions: int
    notify: str | None  # the member's level (None: their default; DESIGN §6.2)
    muted_until: datetime | None  # only while it lies ahead

    @property
    def id(self) -> str:
        return self.shared.id

    def to_public(self) -> dict[str, Any]:
        return self.shared.to_public() | {
            "role": self.role,
            "last_read_seq": self.last_read_seq,
            "last_delivered_seq": self.last_delivered_seq,
            "unread_count": self.unread_count,
            "unread_mentions": self.unread_mentions,
            "notify": self.notify,
            "muted_until": isoformat(self.muted_until) if self.muted_until else None,
        }


def unread_condition(user_id: str | ColumnElement[Any]) -> Any:
    """Messages a member has not read: after their read mark, not their own, not deleted,
    in the conversation's timeline (a thread's replies count in the thread instead)."""
    return and_(
        messages.c.seq > members.c.last_read_seq,
        messages.c.kind == "text",
        messages.c.deleted_at.is_(None),
        IN_CONVERSATION,
        or_(messages.c.sender_id.is_(None), messages.c.sender_id != user_id),
    )


# The statements below are built once: a subquery's column collection is rebuilt on every
# construction, which made building them cost more than running them (every identify
# reads these). The conversation ids are bound as one parameter, ``ids`` (store/one_of.py):
# one SQL text whatever their number, never rendered again.
_MEMBER_COUNT = (  # one index range of members per conversation
    select(func.count())
    .select_from(members)
    .where(members.c.conversation_id == conversations.c.id)
    .scalar_subquery()
)
_CONVERSATIONS = select(conversations, _MEMBER_COUNT.label("member_count")).where(
    one_of(conversations.c.id, "ids")
)
_RANKED = (
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
    .where(one_of(members.c.conversation_id, "ids"))
    .subquery()
)
_MEMBER_PREVIEWS = (
    select(_RANKED, *MEMBER_PROFILE)
    .join(users, users.c.id == _RANKED.c.user_id)
    .where(_RANKED.c.position <= MEMBER_PREVIEW)
    .order_by(_RANKED.c.conversation_id, _RANKED.c.position)
)
# The last message of each conversation: the first entry of its (conversation_id, seq)
# index read backwards, one index step per conversation. (A max(seq) ... GROUP BY, matched
# back with a row-value IN, read every message of every listed conversation to find each
# maximum: the whole history of the caller's conversations on every conversation list.)
_RECENT = messages.alias("recent")
_LATEST_ID = (
    select(_RECENT.c.id)
    .where(_RECENT.c.conversation_id == conversations.c.id)
    .order_by(_RECENT.c.seq.desc())
    .limit(1)
    .scalar_subquery()
)
_LAST_MESSAGES = select(messages).where(
    messages.c.id.in_(select(_LATEST_ID).where(one_of(conversations.c.id, "ids")))
)


async def shared_views(
    conn: AsyncConnection, conversation_ids: Sequence[str], *, urls: AttachmentUrls | None
) -> dict[str, SharedView]:
    return await conn.run_sync(read_shared_views, conversation_ids, urls=urls)


def read_shared_views(
    conn: Connection, conversation_ids: Sequence[str], *, urls: AttachmentUrls | None
) -> dict[str, SharedView]:
    """What every member sees of each conversation: settings, member count and preview,
    ``last_seq`` and the last message."""
    if not conversation_ids:
        return {}
    ids = {"ids": list(conversation_ids)}
    views: dict[str, SharedView] = {}
    for row in conn.execute(_CONVERSATIONS, ids):
        views[row.id] = SharedView(
            id=row.id,
            type=row.type,
            name=row.name,
            slug=row.slug,
            topic=row.topic,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_activity_at=row.last_activity_at,
            last_seq=row.last_seq,
            visibility=row.visibility,
            retention_days=row.retention_days,
            legal_hold=bool(row.legal_hold),
            expired_through_seq=row.expired_through_seq,
            encrypted=bool(row.encrypted),
            archived_at=row.archived_at,
            avatar=group_avatar_urls(row.id, row.avatar_key),
            member_count=row.member_count,
        )
    for row in conn.execute(_MEMBER_PREVIEWS, ids):
        views[row.conversation_id].members.append(MemberPreview.from_row(row))
    for message in read_messages(conn, _LAST_MESSAGES, ids, urls=urls):
        views[message.conversation_id].last_message = message
    return views


# One count per membership row, each an index range: the messages of that conversation
# after that member's read mark. (Joining messages to members and filtering on
# seq > last_read_seq afterwards let PostgreSQL read every message of the caller's
# conversations, the read ones too, and hash them.) Read with the memberships, in the same
# statement: one execution fewer per ready and per conversation list.
_UNREAD_COUNT = (
    select(func.count())
    .select_from(messages)
    .where(
        messages.c.conversation_id == members.c.conversation_id,
        unread_condition(members.c.user_id),
    )
    .scalar_subquery()
)
# The memberships of each user bound as ``user_ids``: one statement for a burst of
# ``ready`` reads, as for one user's conversation list.
_MINE = (
    select(
        members.c.user_id,
        members.c.conversation_id,
        members.c.role,
        members.c.last_read_seq,
        members.c.last_delivered_seq,
        members.c.notify,
        members.c.muted_until,
        _UNREAD_COUNT.label("unread"),
    )
    .join(conversations, conversations.c.id == members.c.conversation_id)
    .where(one_of(members.c.user_id, "user_ids"))
    .order_by(conversations.c.last_activity_at.desc(), conversations.c.id)
)
_MINE_AMONG = _MINE.where(one_of(members.c.conversation_id, "ids"))
# Unread messages that mention the member (a muted conversation still shows these), only
# for conversations with unread messages: the same index range, filtered by the mentions
# list (stored as JSON text of user ids; ids are [0-9A-Z], so no LIKE wildcard can occur in
# the pattern).
_UNREAD_MENTIONS = (
    select(func.count())
    .select_from(messages)
    .where(
        messages.c.conversation_id == members.c.conversation_id,
        unread_condition(members.c.user_id),
        messages.c.mentions.like(literal('%"') + members.c.user_id + literal('"%')),
    )
    .scalar_subquery()
)
# Counted for exactly the memberships bound as ``pairs`` ("user id:conversation id"; ids
# hold no colon), found by the users' index: the count runs for those only. (A list of users
# and one of conversations would count every user in every listed conversation: the square
# of a batch.)
_MENTIONS = select(members.c.user_id, members.c.conversation_id, _UNREAD_MENTIONS.label("n")).where(
    one_of(members.c.user_id, "user_ids"),
    one_of(members.c.user_id + literal(":") + members.c.conversation_id, "pairs"),
)


async def member_views(
    conn: AsyncConnection,
    user_id: str,
    conversation_ids: Sequence[str] | None = None,
    *,
    urls: AttachmentUrls | None,
) -> list[MemberView]:
    return await conn.run_sync(read_member_views, user_id, conversation_ids, urls=urls)


def read_member_views(
    conn: Connection,
    user_id: str,
    conversation_ids: Sequence[str] | None = None,
    *,
    urls: AttachmentUrls | None,
) -> list[MemberView]:
    """The caller's conversations (all, or those given), most recently active first."""
    return _assemble(conn, _read_mine(conn, [user_id], conversation_ids), urls)[user_id]


def read_member_views_of(
    conn: Connection, user_ids: Sequence[str], *, urls: AttachmentUrls | None
) -> dict[str, list[MemberView]]:
    """Every conversation of each user, as ``read_member_views`` lists them; the shared
    view of a conversation several of them are in is read once, for all of them (the
    gateway reads ``ready`` for a burst of reconnecting sessions at once)."""
    return _assemble(conn, _read_mine(conn, user_ids, None), urls)


@dataclass(frozen=True, slots=True)
class _Mine:
    """One member's rows of their conversations: memberships, then unread mentions."""

    memberships: list[Any]  # rows of _MINE
    mentions: dict[str, int] = field(default_factory=dict)


def _read_mine(
    conn: Connection, user_ids: Sequence[str], conversation_ids: Sequence[str] | None
) -> dict[str, _Mine]:
    """Each user's memberships (all, or among ``conversation_ids``), most recently active
    first, then their unread mentions: two statements whatever the number of users."""
    theirs = {user_id: _Mine([]) for user_id in user_ids}
    if not theirs:
        return theirs
    params: dict[str, Any] = {"user_ids": list(theirs)}
    statement = _MINE
    if conversation_ids is not None:
        statement, params["ids"] = _MINE_AMONG, list(conversation_ids)
    unread: set[tuple[str, str]] = set()  # (user id, conversation id)
    for row in conn.execute(statement, params):
        theirs[row.user_id].memberships.append(row)
        if row.unread:
            unread.add((row.user_id, row.conversation_id))
    if unread:
        pairs = [f"{user_id}:{conversation_id}" for user_id, conversation_id in unread]
        memberships = {"user_ids": list({user_id for user_id, _ in unread}), "pairs": pairs}
        for counted in conn.execute(_MENTIONS, memberships):
            theirs[counted.user_id].mentions[counted.conversation_id] = counted.n
    return theirs


def _assemble(
    conn: Connection, theirs: dict[str, _Mine], urls: AttachmentUrls | None
) -> dict[str, list[MemberView]]:
    ids = sorted({row.conversation_id for mine in theirs.values() for row in mine.memberships})
    shared = read_shared_views(conn, ids, urls=urls)
    now = utcnow()
    return {
        user_id: [
            MemberView(
                shared[row.conversation_id],
                role=row.role,
                last_read_seq=row.last_read_seq,
                last_delivered_seq=row.last_delivered_seq,
                unread_count=row.unread,
                unread_mentions=mine.mentions.get(row.conversation_id, 0),
                notify=row.notify,
                muted_until=row.muted_until if row.muted_until and row.muted_until > now else None,
            )
            for row in mine.memberships
            if row.conversation_id in shared
        ]
        for user_id, mine in theirs.items()
    }
