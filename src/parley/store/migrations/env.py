"""Alembic environment: runs on the connection ``parley.store.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from parley.store.tables.catalog import complete_metadata

# Search index objects live outside parley.store.tables (FTS5 tables, triggers, a generated column;
# see 0002_search): autogenerate must not propose dropping them.
SEARCH_OBJECT_PREFIXES = ("messages_fts", "message_search", "ix_messages_search", "search_vector")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (reflected and name is not None and name.startswith(SEARCH_OBJECT_PREFIXES))


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `parley migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=complete_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
