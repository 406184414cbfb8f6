"""The :class:`Database`: one async engine and the two ways services use it.

``transaction()`` opens a write transaction; ``read()`` a read-only snapshot. Both hand out
the ``AsyncConnection`` that query functions take explicitly — never a context variable.

SQLite specifics (one file per database, see ``docs/operations.md``):
- WAL journal, so readers never wait for the writer;
- ``synchronous`` from settings (FULL by default: committed means on disk, power loss included);
- write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
  upgrade, and are serialised in-process by an ``asyncio.Lock`` because SQLite's busy handler
  sleeps in growing steps and would make contention slow. Other processes on the same file
  wait on ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0
_WRITE_OPTION = "parley_write"


class Database:
    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 10,
        echo: bool = False,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._write_lock: asyncio.Lock | None = None
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0)
            self._write_lock = asyncio.Lock()
            _install_sqlite_hooks(self.engine, sqlite_synchronous)
        elif self.dialect == "postgresql":
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                # A database that does not answer fails the request in seconds (503,
                # retry), not after asyncpg's default minute.
                connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block exits normally, rolled back otherwise."""
        if self._write_lock is not None:
            async with self._write_lock:
                async with self._begin(write=True) as conn:
                    yield conn
        else:
            async with self._begin(write=True) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on SQLite)."""
        async with self._begin(write=False) as conn:
            yield conn

    @asynccontextmanager
    async def _begin(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if write:
                await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_status(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        try:
            return {"size": pool.size(), "checked_out": pool.checkedout()}
        except AttributeError:
            return {"size": 0, "checked_out": 0}

    async def dispose(self) -> None:
        await self.engine.dispose()


def _install_sqlite_hooks(engine: AsyncEngine, synchronous: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Parley issues BEGIN itself (below); the driver's implicit BEGIN would defer locks.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
