"""End-to-end encryption (DESIGN §6.1, migration 0014; ``parley.services.e2ee_*``): devices'
public keys, one-time prekeys, the to-device inbox and key backups. Encrypted messages
themselves are rows of ``messages``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

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
