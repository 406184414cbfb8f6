"""``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike.

Both dialects spell it the same way in SQLAlchemy, from different modules; this picks the
module by dialect name, so service code states the intent once ("insert unless a row with
this key exists") and works on either database. The statement's rowcount says whether the
row was new — that is how the notification ledger makes its jobs idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_ignore(
    dialect: str, table: Table, key: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` that does nothing when ``key`` (its primary key or a unique
    constraint's columns) already exists. Add ``.values(...)`` or execute with rows."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(key))
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(key))
    raise ValueError(f"unsupported database {dialect!r}")
