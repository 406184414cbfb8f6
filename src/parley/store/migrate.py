"""Schema migrations through Alembic, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from parley.config import Settings
from parley.store.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run on every start: a no-op when current."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    # A write transaction (on SQLite: BEGIN IMMEDIATE, under the write lock): a deferred one
    # could fail to upgrade its lock if another writer committed first.
    async with database.transaction() as conn:
        await conn.run_sync(run)


async def current_revision(database: Database) -> str | None:
    def read(connection: Connection) -> Any:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as conn:
        result: str | None = await conn.run_sync(read)
        return result


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate_database(settings: Settings) -> str | None:
    """Bring the configured database to the newest schema (``parley migrate``, and before
    the operator commands that open the database themselves). Returns the revision."""
    db = Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await upgrade(db)
        return await current_revision(db)
    finally:
        await db.dispose()
