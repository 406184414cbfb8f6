"""Throwaway benchmark databases: a SQLite file, or a PostgreSQL database created for one
run and dropped after it (``PARLEY_TEST_DATABASE_URL`` names the server, as for the tests)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.config import normalise_database_url

PG_ADMIN = os.environ.get("PARLEY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

Drop = Callable[[], Awaitable[None]]


async def make_database(kind: str, directory: Path, name: str) -> tuple[str, Drop | None]:
    """An empty database named ``name``: its driver URL, and how to drop it (None for SQLite,
    whose file goes with ``directory``)."""
    if kind == "sqlite":
        return normalise_database_url(f"sqlite:///{directory / (name + '.db')}"), None
    admin = normalise_database_url(PG_ADMIN)
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    return admin.rsplit("/", 1)[0] + f"/{name}", drop
