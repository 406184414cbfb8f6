"""Accounts and how they sign in: users, login sessions, refresh tokens, TOTP, recovery
codes and password resets (DESIGN §2, §6.3; migration 0011 for the second factor and resets)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    text,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

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
    # Raised by every change others see — name, picture, erasure (migration 0018): clients
    # keep the highest version of a profile, whichever answer or event brings it last.
    Column("profile_version", Integer, nullable=False, default=0, server_default=text("0")),
)

# The value an UPDATE of a profile sets ``profile_version`` to (in SQL: no lost increment).
NEXT_PROFILE_VERSION = users.c.profile_version + 1


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
