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
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("deactivated_at", UTCDateTime, nullable=True),
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
    CheckConstraint("type IN ('direct', 'group')", name="type"),
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
    CheckConstraint("kind IN ('text', 'system')", name="kind"),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    UniqueConstraint(
        "conversation_id", "sender_id", "client_msg_id", name="uq_messages_client_msg_id"
    ),
    Index("ix_messages_conversation_version", "conversation_id", "version_seq"),
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
    CheckConstraint("kind IN ('image', 'document', 'audio', 'video')", name="kind"),
    Index("ix_attachments_message_id", "message_id"),
    # A conversation's files and media, newest first (the gallery), and deleting a
    # conversation, which sets its attachments' conversation_id NULL (migrations 0004, 0007).
    Index("ix_attachments_conversation_gallery", "conversation_id", "id"),
    Index("ix_attachments_uploader_id", "uploader_id"),
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
