"""The schema's modules (``parley.store.tables``): one MetaData holds every table.

Each concept module adds its tables to the shared MetaData when imported, so the catalog
must import every one of them — else Alembic, the query-plan checks and the tests that
empty the database silently miss a table.
"""

from __future__ import annotations

import pkgutil

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import parley.store.tables as tables_package
from parley.store.db import Database
from parley.store.tables.catalog import CONCEPTS, complete_metadata

# The package's modules that define no table.
SUPPORT_MODULES = {"metadata", "catalog"}
# Tables the migrations create outside the MetaData: Alembic's own, and SQLite's search
# indexes of messages and file names — FTS5 tables and their doc-id maps (migrations 0002,
# 0007; PostgreSQL keeps them as columns and indexes).
OUTSIDE_METADATA_PREFIXES = (
    "alembic_version",
    "messages_fts",
    "message_search",
    "attachment_names_fts",
    "attachment_search",
)


def test_the_catalog_lists_every_concept_module() -> None:
    modules = {info.name for info in pkgutil.iter_modules(tables_package.__path__)}
    assert set(CONCEPTS) == modules - SUPPORT_MODULES


def test_each_table_is_defined_once() -> None:
    names = [table.name for table in complete_metadata().sorted_tables]
    assert len(names) == len(set(names)) > 30


async def test_the_migrated_database_has_exactly_the_catalogs_tables(database_url: str) -> None:
    def table_names(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            migrated = await conn.run_sync(table_names)
    finally:
        await db.dispose()
    expected = {table.name for table in complete_metadata().sorted_tables}
    assert {name for name in migrated if not name.startswith(OUTSIDE_METADATA_PREFIXES)} == expected
