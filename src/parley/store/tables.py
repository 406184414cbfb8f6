"""Every table, as SQLAlchemy Core. Alembic migrations create them; queries import them.

Ids are 26-character time-ordered strings (``parley.ids``). Sequence numbers are per
conversation (DESIGN §2 "Persistence"): ``conversations.last_seq`` is the high-water mark,
each message takes the next value as ``seq`` and any later change to it takes another as
``version_seq`` — so "what changed after N" is ``version_seq > N`` on one index.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from parley.store.types import UTCDateTime

ID = String(26)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(32), nullable=False),
    # Uniqueness is case-insensitive: the lower-cased name carries the unique index.
    Column("username_key", String(32), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    # Kept in step with ``role`` (role == 'admin') for readers that predate roles.
    Column("is_admin", Boolean, nullable=False, default=False),
    # The site role (DESIGN §6.3): 'user' | 'moderator' | 'admin' (services.roles).
    Column("role", String(16), nullable=False, default="user", server_default="user", index=True),
    # The profile picture's current version (services.avatars); NULL: initials are shown.
    Column("avatar_key", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("deactivated_at", UTCDateTime, nullable=True),
    # Erased (DESIGN §6.4, migration 0012): the row stays so the username stays reserved.
    Column("erased_at", UTCDateTime, nullable=True),
    # Bot accounts (DESIGN §6.6, migration 0013): never log in, marked wherever users show.
    Column("is_bot", Boolean, nullable=False, default=False, server_default=text("false")),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("device_name", String(200), nullable=False, default=""),
    Column("user_agent", String(400), nullable=False, default=""),
    Column("ip_address", String(64), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
)

# Refresh tokens are stored only as SHA-256 hashes. A rotated token keeps its row with
# ``rotated_at`` set, so presenting it again is recognised as reuse (theft) and revokes
# the session it belonged to.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "session_id", ID, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("type", String(8), nullable=False),
    Column("name", String(100), nullable=True),
    Column("slug", String(64), nullable=True, unique=True),
    Column("topic", String(500), nullable=False, default=""),
    # "lowid:highid" for direct conversations: the unique index makes one DM per pair.
    Column("direct_key", String(53), nullable=True, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_activity_at", UTCDateTime, nullable=False),
    # Retention (DESIGN §6.4, migration 0012; parley.lifecycle.retention): days messages
    # are kept (NULL: the site policy), a legal hold that suspends deletion, and the seq up
    # to which every message was removed — what clients drop.
    Column("retention_days", Integer, nullable=True),
    Column("legal_hold", Boolean, nullable=False, default=False, server_default=text("false")),
    Column("expired_through_seq", BigInteger, nullable=False, default=0, server_default="0"),
    # 'private' or 'public': a public group is listed in the directory and anyone may join
    # it (DESIGN §6.3; migration 0010).
    Column("visibility", String(8), nullable=False, server_default="private"),
    # End-to-end encrypted (DESIGN §6.1, migration 0014): switched on, never off.
    Column("encrypted", Boolean, nullable=False, default=False, server_default=false()),
    # Archived by a site admin (migration 0016): read-only until unarchived; NULL: active.
    Column("archived_at", UTCDateTime, nullable=True),
    # A group's picture (services.avatars, migration 0016); NULL: the initial is shown.
    Column("avatar_key", String(32), nullable=True),
    CheckConstraint("type IN ('direct', 'group')", name="type"),
    Index(
        "ix_conversations_public",
        "last_activity_at",
        sqlite_where=text("visibility = 'public'"),
        postgresql_where=text("visibility = 'public'"),
    ),
)

members = Table(
    "members",
    metadata,
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), nullable=False, default="member"),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False, default=0),
    Column("last_delivered_seq", BigInteger, nullable=False, default=0),
    # Notification level here (DESIGN §6.2): 'all' | 'mentions' | 'none'; NULL follows the
    # user's default. Muted until this time (far future: muted for good); migration 0005.
    Column("notify", String(8), nullable=True),
    Column("muted_until", UTCDateTime, nullable=True),
    CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
    Index("ix_members_user_id", "user_id"),
)

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

# Invite links to a group (DESIGN §6.3; services.invites). Only the SHA-256 of the token
# is kept; ``uses`` counts joins, bounded by ``max_uses`` with a conditional UPDATE.
conversation_invites = Table(
    "conversation_invites",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0),
    Column("revoked_at", UTCDateTime, nullable=True),
)

reactions = Table(
    "reactions",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per pair of users, directed from the one who asked.
contacts = Table(
    "contacts",
    metadata,
    Column("requester_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("addressee_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'accepted')", name="status"),
    Index("ix_contacts_addressee_id", "addressee_id"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("blocked_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_blocks_blocked_id", "blocked_id"),
)

# Link previews (services/link_previews.py): one row per URL fetched (a cache shared by
# every message linking there), keyed by the SHA-256 of the URL; ``status`` "ok" or
# "failed" (failures are cached too, so a dead link is not fetched for every message).
# ``image_key`` is the preview picture, re-encoded by Parley, in the BlobStore.
link_previews = Table(
    "link_previews",
    metadata,
    Column("id", ID, primary_key=True),
    Column("url_hash", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("title", String(300), nullable=True),
    Column("description", String(600), nullable=True),
    Column("site_name", String(100), nullable=True),
    Column("image_key", String(200), nullable=True),
    Column("image_width", Integer, nullable=True),
    Column("image_height", Integer, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
)

# The preview a message shows (its first link), set after the message commits.
message_link_previews = Table(
    "message_link_previews",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "preview_id", ID, ForeignKey("link_previews.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)

# Uploaded files (issue #6). An upload belongs to its uploader until a message claims it
# (``message_id`` set, ``claimed_at`` stamped, in the message's own transaction). The
# files live in the BlobStore under the keys listed in ``variants`` (JSON: variant name ->
# key, content type, size, dimensions, sha256). ``deleted_at`` marks a row whose files are
# being removed: its message was deleted, or it was never used (see services.attachments).
# A hard-deleted message (its conversation deleted) sets ``message_id`` NULL and leaves
# ``claimed_at``: the sweep recognises that pair as orphaned.
attachments = Table(
    "attachments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("uploader_id", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("message_id", ID, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True
    ),
    Column("position", SmallInteger, nullable=False, default=0),
    Column("name", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("variants", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    # A forwarded file (services.forwarding) is a new row sharing the blobs of another:
    # the id of the row that stored them. The sweep deletes blobs only when no live row
    # still shares them (migration 0010).
    Column("blob_owner_id", ID, nullable=True),
    # An opaque client-encrypted blob (DESIGN §6.1): stored as sent, never sniffed or
    # thumbnailed; only encrypted uploads go into encrypted conversations (migration 0014).
    Column("encrypted", Boolean, nullable=False, default=False, server_default=false()),
    CheckConstraint("kind IN ('image', 'document', 'audio', 'video')", name="kind"),
    Index("ix_attachments_message_id", "message_id"),
    # A conversation's files and media, newest first (the gallery), and deleting a
    # conversation, which sets its attachments' conversation_id NULL (migrations 0004, 0007).
    Index("ix_attachments_conversation_gallery", "conversation_id", "id"),
    Index("ix_attachments_uploader_id", "uploader_id"),
    Index(
        "ix_attachments_blob_owner_id",
        "blob_owner_id",
        sqlite_where=text("blob_owner_id IS NOT NULL"),
        postgresql_where=text("blob_owner_id IS NOT NULL"),
    ),
    # Partial, for the sweep (migration 0004): over every row, "created a day ago" matched
    # nearly all attachments, and "deleted_at IS NULL" looked selective to SQLite without
    # statistics, so message reads walked all live attachments by it.
    Index(
        "ix_attachments_created_at",
        "created_at",
        sqlite_where=text("claimed_at IS NULL"),
        postgresql_where=text("claimed_at IS NULL"),
    ),
    Index(
        "ix_attachments_deleted_at",
        "deleted_at",
        sqlite_where=text("deleted_at IS NOT NULL"),
        postgresql_where=text("deleted_at IS NOT NULL"),
    ),
)


# --- notifications (DESIGN §6.2, migration 0005; parley.notifications)

# A user's notification defaults; no row means the defaults below.
notification_settings = Table(
    "notification_settings",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("notify_default", String(8), nullable=False, default="all"),
    # Digest emails of missed DMs and mentions (the one-click unsubscribe turns this off).
    Column("email_digest", Boolean, nullable=False, default=True),
    # When the last digest went out: one digest per user per window.
    Column("last_digest_at", UTCDateTime, nullable=True),
    CheckConstraint("notify_default IN ('all', 'mentions', 'none')", name="notify_default"),
)

# One email address per user (services.email_addresses). ``address_key`` is the lower-cased
# address; a verified address belongs to one user only (a partial unique index), an
# unverified one may be claimed by several until one of them verifies it.
email_addresses = Table(
    "email_addresses",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(254), nullable=False),
    Column("address_key", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("verified_at", UTCDateTime, nullable=True),
    Index(
        "uq_email_addresses_verified_key",
        "address_key",
        unique=True,
        sqlite_where=text("verified_at IS NOT NULL"),
        postgresql_where=text("verified_at IS NOT NULL"),
    ),
)

# A browser's Web Push subscription (RFC 8030 endpoint + RFC 8291 keys), one per device.
# The session that registered it owns it: logging that session out stops its pushes.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("endpoint", String(1024), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("user_agent", String(400), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_success_at", UTCDateTime, nullable=True),
)

# Per device and conversation: what was last pushed (idempotency and coalescing, see
# notifications.push_delivery). ``claimed_seq``/``job_id`` mark a push being sent: a
# retry of the same job resends it, any other job waits for it.
push_states = Table(
    "push_states",
    metadata,
    Column(
        "subscription_id",
        ID,
        ForeignKey("push_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("pushed_seq", BigInteger, nullable=False, default=0),
    Column("claimed_seq", BigInteger, nullable=False, default=0),
    Column("job_id", String(32), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    # A follow-up push is queued for this time (coalesced messages); NULL: none queued.
    Column("flush_at", UTCDateTime, nullable=True),
    Index("ix_push_states_conversation_id", "conversation_id"),
)

# The ledger: one row per (user, message, channel) that qualified for a notification —
# idempotency of the planning job, and the queue of the email digests. ``status``:
# 'pending' → 'sent' (or 'skipped': read, muted, left or deleted before it went out).
notifications = Table(
    "notifications",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("message_id", ID, primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("digest_id", String(32), nullable=True),
    CheckConstraint("channel IN ('push', 'email')", name="channel"),
    CheckConstraint("status IN ('pending', 'claimed', 'sent', 'skipped')", name="status"),
    Index("ix_notifications_conversation", "conversation_id", "user_id", "seq"),
    # The digest sweep's "pending and due" (only the pending rows, a small part).
    Index(
        "ix_notifications_due",
        "due_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_notifications_digest_id",
        "digest_id",
        sqlite_where=text("digest_id IS NOT NULL"),
        postgresql_where=text("digest_id IS NOT NULL"),
    ),
    # The daily clean-up of old rows.
    Index("ix_notifications_created_at", "created_at"),
)


# --- data lifecycle (DESIGN §6.4, migration 0012; parley.lifecycle)

# A personal export (``conversation_id`` NULL) or a conversation export requested by one of
# its admins. A job builds the ZIP into the BlobStore under ``blob_key``; the row and the
# blob go at ``expires_at``.
data_exports = Table(
    "data_exports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    ),
    Column("status", String(8), nullable=False),
    Column("progress", SmallInteger, nullable=False, default=0),
    Column("blob_key", String(200), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("error", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
    Index("ix_data_exports_user_id", "user_id", "created_at"),
    Index("ix_data_exports_expires_at", "expires_at"),
    # Deleting a conversation looks its exports up (ON DELETE CASCADE).
    Index("ix_data_exports_conversation_id", "conversation_id"),
)


# --- accounts and administration (DESIGN §6.3, migration 0011)

# A user's TOTP secret (RFC 6238): pending until a first code confirms it. ``last_step`` is
# the time step of the last code accepted, so the same code (or an older one) never works
# twice — a compare-and-set on it admits one of two racing logins.
totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("last_step", BigInteger, nullable=True),
)

# Ten single-use recovery codes per user with 2FA, as Argon2 hashes.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

# Password reset tokens (mailed, or issued by an administrator), as SHA-256 hashes: the
# token itself is only ever in the link. Single use: ``used_at`` is set exactly once.
password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("issued_by", ID, nullable=True),  # the administrator, for an admin-issued link
)

# Settings administrators change at run time (``registration``); absent: the config's.
site_settings = Table(
    "site_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", ID, nullable=True),
)

# Registration links. ``max_uses`` NULL: unlimited until it expires or is revoked; a use is
# counted by a conditional UPDATE inside the registering transaction, so a single-use link
# registers exactly one account however many use it at once.
registration_invites = Table(
    "registration_invites",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0, server_default="0"),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("note", String(200), nullable=False, default="", server_default=""),
)

# A message reported by a member; moderators resolve it (``resolution``: 'dismissed',
# 'message_deleted', 'sender_deactivated'). One report per reporter and message.
reports = Table(
    "reports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("reporter_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("sender_id", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolution", String(32), nullable=True),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    UniqueConstraint("message_id", "reporter_id", name="uq_reports_message_id"),
    Index("ix_reports_status_id", "status", "id"),
)

# Security events (services.audit). No foreign keys: an entry outlives the user or thing it
# names. ``details`` is JSON and never holds message content. Ids are time-ordered, so
# paging by id is paging by time.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("action", String(48), nullable=False),
    Column("actor_id", ID, nullable=True),
    Column("target_user_id", ID, nullable=True),
    Column("target_id", ID, nullable=True),
    Column("ip_address", String(64), nullable=False, default="", server_default=""),
    Column("details", Text, nullable=False, default="{}", server_default="{}"),
    Index("ix_audit_log_actor_id", "actor_id", "id"),
    Index("ix_audit_log_target_user_id", "target_user_id", "id"),
    Index("ix_audit_log_action", "action", "id"),
)


# --- integrations (DESIGN §6.6, migration 0013; parley.integrations)

# A bot is a user (``users.is_bot``) with an owner. Its one current token is kept only as a
# SHA-256 hash, with the session it opens: revoking that session (rotation, deletion)
# stops the token and closes its sockets on every node, like any logout. Bots made for a
# webhook (``kind`` 'webhook') have no token.
bots = Table(
    "bots",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("token_issued_at", UTCDateTime, nullable=True),
    CheckConstraint("kind IN ('bot', 'webhook')", name="kind"),
    Index("ix_bots_owner_id", "owner_id"),
)

# Incoming webhooks keep only the hash of the secret in their URL; outgoing ones keep
# their signing secret (HMAC needs it) and count consecutive failed deliveries: at
# PARLEY_WEBHOOK_MAX_FAILURES the webhook is disabled.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(8), nullable=False),
    Column("bot_user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("secret", String(64), nullable=True),
    Column("triggers", Text, nullable=False, default="[]"),  # JSON list of words
    Column("failures", Integer, nullable=False, default=0),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('incoming', 'outgoing')", name="kind"),
    Index("ix_webhooks_conversation_id", "conversation_id"),
    Index("ix_webhooks_bot_user_id", "bot_user_id"),
)

# The delivery log of outgoing webhooks: one row per (webhook, message), so a message event
# seen twice (at-least-once) is delivered once.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("webhook_id", ID, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", ID, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("response_status", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'sending', 'retrying', 'delivered', 'failed')", name="status"),
    UniqueConstraint("webhook_id", "message_id", name="uq_webhook_deliveries_webhook_id"),
    Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
)

# Custom slash commands: ``scope_key`` is '' for site-wide ones and the conversation id
# otherwise, so one unique index covers both (NULLs would never collide).
commands = Table(
    "commands",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(32), nullable=False),
    Column("scope_key", String(26), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    ),
    Column("url", Text, nullable=False),
    Column("secret", String(64), nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope_key", "name", name="uq_commands_scope_key"),
    Index("ix_commands_conversation_id", "conversation_id"),
)


# --- end-to-end encryption (DESIGN §6.1, migration 0014; parley.services.e2ee_*)

DEVICE_ID = String(64)
PUBLIC_KEY = String(64)  # 32 bytes as unpadded base64url: 43 characters
SIGNATURE = String(128)  # 64 bytes as unpadded base64url: 86 characters

# A user's E2EE device: public keys only. ``session_id`` is the login session that last
# uploaded its keys; a revoked (or deleted) session takes the device out of lists, claims
# and to-device delivery, since whoever held that session may no longer read.
e2ee_devices = Table(
    "e2ee_devices",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", DEVICE_ID, primary_key=True),
    Column(
        "session_id", ID, ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    Column("display_name", String(200), nullable=False, default=""),
    Column("signing_key", PUBLIC_KEY, nullable=False),  # Ed25519
    Column("identity_key", PUBLIC_KEY, nullable=False),  # X25519, signed by signing_key
    Column("identity_signature", SIGNATURE, nullable=False),
    Column("signed_prekey_id", BigInteger, nullable=False),
    Column("signed_prekey", PUBLIC_KEY, nullable=False),  # X25519, rotated
    Column("signed_prekey_signature", SIGNATURE, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Each row is handed out once: a claim deletes the row it returns (services.e2ee_keys).
e2ee_one_time_prekeys = Table(
    "e2ee_one_time_prekeys",
    metadata,
    Column("user_id", ID, primary_key=True),
    Column("device_id", DEVICE_ID, primary_key=True),
    Column("key_id", BigInteger, primary_key=True),
    Column("public_key", PUBLIC_KEY, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["user_id", "device_id"],
        ["e2ee_devices.user_id", "e2ee_devices.device_id"],
        ondelete="CASCADE",
    ),
)

# The to-device inbox: pairwise ciphertexts waiting for their device's ack. ``message_id``
# is the sender's idempotency key (a resend is the same row).
e2ee_to_device = Table(
    "e2ee_to_device",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, nullable=False),
    Column("device_id", DEVICE_ID, nullable=False),
    Column("sender_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sender_device_id", DEVICE_ID, nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["user_id", "device_id"],
        ["e2ee_devices.user_id", "e2ee_devices.device_id"],
        ondelete="CASCADE",
    ),
    UniqueConstraint(
        "user_id", "device_id", "sender_id", "message_id", name="uq_e2ee_to_device_message"
    ),
    Index("ix_e2ee_to_device_inbox", "user_id", "device_id", "id"),
)

# One opaque backup per user, encrypted by the client with a passphrase-derived key.
e2ee_key_backups = Table(
    "e2ee_key_backups",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
