"""accounts: site roles, two-factor, password resets, invites, reports, audit log

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-06 03:30:00

DESIGN §6.3 (``parley.credentials``, ``two_factor``, ``administration``,
``reports``, ``audit``):

- ``users.role``: 'user' | 'moderator' | 'admin', added in place (existing administrators
  become 'admin'; ``is_admin`` is kept in step for older readers).
- ``totp_credentials`` (one per user, pending until confirmed; ``last_step`` refuses a
  replayed code) and ``recovery_codes`` (Argon2 hashes, each used once).
- ``password_resets``: single-use reset tokens, stored as SHA-256 hashes.
- ``site_settings``: what administrators change at run time (the registration mode).
- ``registration_invites``: single- or multi-use registration links.
- ``reports``: messages reported by members, and how moderators resolved them.
- ``audit_log``: security events; no foreign keys, so an entry outlives what it names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.String(length=26)
WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("role", sa.String(length=16), nullable=False, server_default="user")
    )
    op.execute("UPDATE users SET role = 'admin' WHERE is_admin")
    op.create_index("ix_users_role", "users", ["role"])

    op.create_table(
        "totp_credentials",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("confirmed_at", WHEN, nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        _fk("totp_credentials", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_credentials")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        _fk("recovery_codes", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])

    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        sa.Column("issued_by", ID, nullable=True),
        _fk("password_resets", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_password_resets")),
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])

    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_settings")),
    )

    op.create_table(
        "registration_invites",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False, server_default=""),
        _fk("registration_invites", "created_by", "users.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_registration_invites_token_hash")),
    )

    op.create_table(
        "reports",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("reporter_id", ID, nullable=False),
        sa.Column("sender_id", ID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("resolved_by", ID, nullable=True),
        sa.Column("resolved_at", WHEN, nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_reports_status")),
        _fk("reports", "message_id", "messages.id"),
        _fk("reports", "conversation_id", "conversations.id"),
        _fk("reports", "reporter_id", "users.id"),
        _fk("reports", "sender_id", "users.id", ondelete="SET NULL"),
        _fk("reports", "resolved_by", "users.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("message_id", "reporter_id", name=op.f("uq_reports_message_id")),
    )
    op.create_index("ix_reports_status_id", "reports", ["status", "id"])

    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("target_user_id", ID, nullable=True),
        sa.Column("target_id", ID, nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id", "id"])
    op.create_index("ix_audit_log_target_user_id", "audit_log", ["target_user_id", "id"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("reports")
    op.drop_table("registration_invites")
    op.drop_table("site_settings")
    op.drop_table("password_resets")
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
    op.drop_index("ix_users_role", table_name="users")
    # Plain drop_column (SQLite >= 3.35 drops a column in place): a batch rebuild of
    # ``users`` drops and recreates the table, and with foreign keys on that cascades into
    # every table that refers to it (memberships, sessions) — as 0014 does for its columns.
    op.drop_column("users", "role")
