"""Messages, threads and reactions (DESIGN §2 "Persistence", §6.5).

Each message takes the next value of its conversation's ``last_seq`` as ``seq``, and any
later change to it takes another as ``version_seq`` — so "what changed after N" is
``version_seq > N`` on one index. The search index lives outside these tables (FTS5 and
tsvector objects, migration 0002).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", BigInteger, nullable=False),
    Column("version_seq", BigInteger, nullable=False),
    # NULL for system messages (membership changes and the like).
    Column("sender_id", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(8), nullable=False, default="text"),
    Column("content", Text, nullable=False, default=""),
    Column("client_msg_id", String(64), nullable=True),
    Column("reply_to_id", ID, nullable=True),
    # JSON text: mentioned user ids for text messages, the event for system messages.
    Column("mentions", Text, nullable=False, default="[]"),
    Column("system_event", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("edited_at", UTCDateTime, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    # Threads (DESIGN §6.5; migration 0010): a reply in a thread names its root; with
    # ``thread_broadcast`` it is also shown in the conversation. A root keeps its summary
    # (reply count, last reply time); each reply gives the root a new version_seq.
    Column("thread_root_id", ID, nullable=True),
    Column("thread_broadcast", Boolean, nullable=False, server_default=text("false")),
    Column("thread_reply_count", Integer, nullable=False, server_default="0"),
    Column("thread_last_reply_at", UTCDateTime, nullable=True),
    # JSON attribution of a forwarded message: {message_id, conversation_id, sender_id,
    # created_at} of the original.
    Column("forwarded_from", Text, nullable=True),
    Column("pinned_at", UTCDateTime, nullable=True),
    Column("pinned_by", ID, nullable=True),
    # An encrypted message (migration 0014): ``content`` stays empty (nothing to index,
    # preview or notify), ``ciphertext`` is the client's unpadded base64url and ``e2ee`` its
    # envelope metadata as JSON (``parley.e2ee.formats``).
    Column("ciphertext", Text, nullable=True),
    Column("e2ee", Text, nullable=True),
    CheckConstraint("kind IN ('text', 'system')", name="kind"),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    UniqueConstraint(
        "conversation_id", "sender_id", "client_msg_id", name="uq_messages_client_msg_id"
    ),
    Index("ix_messages_conversation_version", "conversation_id", "version_seq"),
    Index(
        "ix_messages_thread",
        "thread_root_id",
        "seq",
        sqlite_where=text("thread_root_id IS NOT NULL"),
        postgresql_where=text("thread_root_id IS NOT NULL"),
    ),
    Index(
        "ix_messages_pinned",
        "conversation_id",
        "pinned_at",
        sqlite_where=text("pinned_at IS NOT NULL"),
        postgresql_where=text("pinned_at IS NOT NULL"),
    ),
)


# Who follows a thread and how far they read it (services.threads). Taking part follows
# (unless unfollowed later); reading the thread moves ``last_read_seq``.
thread_follows = Table(
    "thread_follows",
    metadata,
    Column("root_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("following", Boolean, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_thread_follows_user", "user_id", "following"),
)


reactions = Table(
    "reactions",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)
