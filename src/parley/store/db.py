"""The :class:`Database`: one async engine and the two ways services use it.

``transaction()`` opens a write transaction; ``read()`` a read-only snapshot. Both hand out
the ``AsyncConnection`` that query functions take explicitly — never a context variable.
``write(work, ...)`` runs a synchronous function of a ``Connection`` in one write
transaction: the hot write path (group commit) uses it, because on SQLite it costs one
hand-off to a thread for the whole transaction (below).

SQLite specifics (one file per database, see ``docs/operations.md``):
- WAL journal, so readers never wait for the writer;
- ``synchronous`` from settings (FULL by default: committed means on disk, power loss included);
- write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
  upgrade, and are serialised in-process by an ``asyncio.Lock`` because SQLite's busy handler
  sleeps in growing steps and would make contention slow. Other processes on the same file
  wait on ``busy_timeout``;
- ``write()`` runs on a dedicated writer thread with a plain (synchronous) SQLite connection.
  The async driver hands every statement to its thread three or four times (cursor,
  execute, fetch, close), each a thread switch and an event-loop wake-up; a transaction of
  eight statements cost about 3.5x the CPU that way (``bench/sqlite_handoff_bench.py``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0
_WRITE_OPTION = "parley_write"

T = TypeVar("T")
P = ParamSpec("P")


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
        self._writer_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self.dialect == "sqlite":
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0)
            self._write_lock = asyncio.Lock()
            _install_sqlite_hooks(self.engine.sync_engine, sqlite_synchronous)
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                # A second engine on the same file, used only from the writer thread. (A
                # ":memory:" database is private to its connection: it keeps run_sync.)
                self._writer_engine = create_engine(
                    parsed.set(drivername="sqlite+pysqlite"),
                    echo=echo,
                    pool_size=1,
                    max_overflow=0,
                    execution_options={_WRITE_OPTION: True},
                    connect_args={"check_same_thread": False},  # disposed from the loop
                )
                _install_sqlite_hooks(self._writer_engine, sqlite_synchronous)
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

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``work(conn, *args, **kwargs)`` — synchronous code — in one write transaction,
        committed when it returns, rolled back if it raises. Waiting callers never cancel a
        transaction that has started: it finishes, and the write lock is held until it has."""
        if self._writer_engine is None or self._write_lock is None:
            async with self.transaction() as conn:
                return await conn.run_sync(work, *args, **kwargs)
        run = functools.partial(_run_in_transaction, self._writer_engine, work, *args, **kwargs)
        lock = self._write_lock
        await lock.acquire()
        try:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="parley-sqlite-writer")
            future = asyncio.get_running_loop().run_in_executor(self._writer, run)
        except BaseException:
            lock.release()
            raise
        future.add_done_callback(lambda _: lock.release())
        return await asyncio.shield(future)

    def sync_engines(self) -> list[Engine]:
        """Every engine a ``Connection`` handed to query code can come from."""
        engines = [self.engine.sync_engine]
        if self._writer_engine is not None:
            engines.append(self._writer_engine)
        return engines

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
        if self._writer is not None and self._writer_engine is not None:
            # Under the write lock: a write still running finishes first. The thread goes
            # too; a later write starts another.
            assert self._write_lock is not None
            async with self._write_lock:
                writer, self._writer = self._writer, None
                await asyncio.get_running_loop().run_in_executor(writer, self._writer_engine.dispose)
                writer.shutdown(wait=False)


def _run_in_transaction(
    engine: Engine, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    with engine.begin() as conn:
        return work(conn, *args, **kwargs)


def _install_sqlite_hooks(sync_engine: Engine, synchronous: str) -> None:
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
