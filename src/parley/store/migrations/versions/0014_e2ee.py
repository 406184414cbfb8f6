"""end-to-end encryption: encrypted conversations, devices and keys, to-device inboxes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 03:10:00

DESIGN §6.1 (``parley.services.e2ee_*``, ``docs/e2ee.md``):

- ``conversations.encrypted``: set on creation or switched on later, never off.
- ``messages.ciphertext`` / ``messages.e2ee``: an encrypted message keeps ``content`` empty
  (so the search indexes of 0002, link previews and notification previews see nothing) and
  carries the client's ciphertext and its envelope metadata (JSON) instead. Added in place:
  the search triggers on ``messages`` are kept.
- ``attachments.encrypted``: an opaque client-encrypted upload (never sniffed or thumbnailed).
- ``e2ee_devices``: per user and device, its public identity keys and signed prekey.
- ``e2ee_one_time_prekeys``: one-time prekeys, each handed out once (claims delete them).
- ``e2ee_to_device``: the per-device inbox of pairwise ciphertexts, deleted on ack.
- ``e2ee_key_backups``: one opaque encrypted backup blob per user.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.String(length=26)
DEVICE = sa.String(length=64)
KEY = sa.String(length=64)
SIGNATURE = sa.String(length=128)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("messages", sa.Column("ciphertext", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("e2ee", sa.Text(), nullable=True))
    op.add_column(
        "attachments",
        sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )

    op.create_table(
        "e2ee_devices",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("device_id", DEVICE, nullable=False),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("signing_key", KEY, nullable=False),
        sa.Column("identity_key", KEY, nullable=False),
        sa.Column("identity_signature", SIGNATURE, nullable=False),
        sa.Column("signed_prekey_id", sa.BigInteger(), nullable=False),
        sa.Column("signed_prekey", KEY, nullable=False),
        sa.Column("signed_prekey_signature", SIGNATURE, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_e2ee_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_e2ee_devices_session_id_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("user_id", "device_id", name=op.f("pk_e2ee_devices")),
    )
    op.create_index("ix_e2ee_devices_session_id", "e2ee_devices", ["session_id"])

    op.create_table(
        "e2ee_one_time_prekeys",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("device_id", DEVICE, nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("public_key", KEY, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"],
            ["e2ee_devices.user_id", "e2ee_devices.device_id"],
            name=op.f("fk_e2ee_one_time_prekeys_user_id_e2ee_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "device_id", "key_id", name=op.f("pk_e2ee_one_time_prekeys")
        ),
    )

    op.create_table(
        "e2ee_to_device",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("device_id", DEVICE, nullable=False),
        sa.Column("sender_id", ID, nullable=False),
        sa.Column("sender_device_id", DEVICE, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"],
            ["e2ee_devices.user_id", "e2ee_devices.device_id"],
            name=op.f("fk_e2ee_to_device_user_id_e2ee_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["users.id"], name=op.f("fk_e2ee_to_device_sender_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_e2ee_to_device")),
        sa.UniqueConstraint(
            "user_id", "device_id", "sender_id", "message_id", name="uq_e2ee_to_device_message"
        ),
    )
    op.create_index("ix_e2ee_to_device_inbox", "e2ee_to_device", ["user_id", "device_id", "id"])
    op.create_index("ix_e2ee_to_device_sender_id", "e2ee_to_device", ["sender_id"])

    op.create_table(
        "e2ee_key_backups",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_e2ee_key_backups_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_e2ee_key_backups")),
    )


def downgrade() -> None:
    op.drop_table("e2ee_key_backups")
    op.drop_table("e2ee_to_device")
    op.drop_table("e2ee_one_time_prekeys")
    op.drop_table("e2ee_devices")
    # Plain drop_column (SQLite >= 3.35 drops a column in place): a batch rebuild would
    # drop the search triggers of 0002 with ``messages``, and cannot drop ``conversations``
    # while other tables refer to it.
    op.drop_column("attachments", "encrypted")
    op.drop_column("messages", "e2ee")
    op.drop_column("messages", "ciphertext")
    op.drop_column("conversations", "encrypted")
