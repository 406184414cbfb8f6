"""The :class:`Database`: one async engine and the two ways services use it.

``transaction()`` opens a write transaction; ``read()`` a read-only snapshot. Both hand out
the ``AsyncConnection`` that query functions take explicitly — never a context variable.
``write(work, ...)`` runs a synchronous function of a ``Connection`` in one write
transaction, ``read_sync(work, ...)`` in one read transaction: the hot paths (group commit,
``ready``) use them, because on SQLite each costs one hand-off to a thread for the whole
transaction (below).

SQLite specifics (one file per database, see ``docs/operations.md``):
- WAL journal, so readers never wait for the writer;
- ``synchronous`` from settings (FULL by default: committed means on disk, power loss included);
- write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
  upgrade, and are serialised in-process by an ``asyncio.Lock`` because SQLite's busy handler
  sleeps in growing steps and would make contention slow. Other processes on the same file
  wait on ``busy_timeout``;
- ``write()`` runs on a dedicated writer thread with a plain (synchronous) SQLite connection,
  ``read_sync()`` on a few reader threads likewise. The async driver hands every statement
  to its thread three or four times (cursor, execute, fetch, close), each a thread switch
  and an event-loop wake-up; a transaction of eight statements cost about 4.6x the CPU that
  way (``bench/sqlite_handoff_bench.py``).
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

from parley.store.pool_drain import RETURN_GRACE_SECONDS, dispose_when_returned
from parley.store.replicas import ReplicaSet

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0
_WRITE_OPTION = "parley_write"
READER_THREADS = 4  # SQLite reads in parallel (WAL); the GIL is released inside SQLite

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
        replica_urls: list[str] | None = None,
    ) -> None:
        self.url = url
        self.replicas: ReplicaSet | None = None
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._write_lock: asyncio.Lock | None = None
        self._writer_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._threads: dict[str, ThreadPoolExecutor] = {}
        # Writes through the async engine still running for callers that went away.
        self._detached: set[asyncio.Task[Any]] = set()
        if self.dialect == "sqlite":
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0)
            self._write_lock = asyncio.Lock()
            _install_sqlite_hooks(self.engine.sync_engine, sqlite_synchronous)
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                # Engines on the same file used only from their threads. (A ":memory:"
                # database is private to its connection: it keeps run_sync.)
                sync_url = parsed.set(drivername="sqlite+pysqlite")
                self._writer_engine = create_engine(
                    sync_url,
                    echo=echo,
                    pool_size=1,
                    max_overflow=0,
                    execution_options={_WRITE_OPTION: True},
                    connect_args={"check_same_thread": False},  # disposed from the loop
                )
                self._reader_engine = create_engine(
                    sync_url,
                    echo=echo,
                    pool_size=READER_THREADS,
                    max_overflow=0,
                    connect_args={"check_same_thread": False},
                )
                for engine in (self._writer_engine, self._reader_engine):
                    _install_sqlite_hooks(engine, sqlite_synchronous)
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
            if replica_urls:
                self.replicas = ReplicaSet(replica_urls, pool_size=pool_size)
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")
        if replica_urls and self.replicas is None:
            raise ValueError("read replicas need PostgreSQL")

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
            task = asyncio.ensure_future(self._write_through_run_sync(work, *args, **kwargs))
            self._detached.add(task)  # it outlives a caller that goes away: dispose() waits
            task.add_done_callback(self._detached_done)
            return await asyncio.shield(task)
        run = functools.partial(_run_in_transaction, self._writer_engine, work, *args, **kwargs)
        lock = self._write_lock
        await lock.acquire()
        try:
            future = self._hand_off("writer", 1, run)
        except BaseException:
            lock.release()
            raise
        future.add_done_callback(lambda _: lock.release())
        return await asyncio.shield(future)

    def _detached_done(self, task: asyncio.Task[Any]) -> None:
        self._detached.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its caller, if still there, got it

    async def _write_through_run_sync(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        async with self.transaction() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    async def read_sync(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``work(conn, *args, **kwargs)`` — synchronous code — in one read transaction
        (a consistent snapshot on SQLite)."""
        if self._reader_engine is None:
            async with self.read() as conn:
                return await conn.run_sync(work, *args, **kwargs)
        run = functools.partial(_run_in_transaction, self._reader_engine, work, *args, **kwargs)
        return await asyncio.shield(self._hand_off("reader", READER_THREADS, run))

    def _hand_off(self, role: str, threads: int, run: Callable[[], T]) -> asyncio.Future[T]:
        executor = self._threads.get(role)
        if executor is None:
            executor = ThreadPoolExecutor(threads, thread_name_prefix=f"parley-sqlite-{role}")
            self._threads[role] = executor
        return asyncio.get_running_loop().run_in_executor(executor, run)

    def sync_engines(self) -> list[Engine]:
        """Every engine a ``Connection`` handed to query code can come from."""
        engines = [self.engine.sync_engine]
        for engine in (self._writer_engine, self._reader_engine):
            if engine is not None:
                engines.append(engine)
        return engines

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on SQLite)."""
        async with self._begin(write=False) as conn:
            yield conn

    @asynccontextmanager
    async def read_replica(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction for the heavy reads (history, changes, search, lists):
        on a read replica that has replayed everything committed before this call, else on
        the primary (``store/replicas.py``). Without replicas, :meth:`read`."""
        if self.replicas is None:
            async with self.read() as conn:
                yield conn
            return
        async with self.replicas.read(self.engine) as conn:
            yield conn

    def read_sources(self) -> dict[str, int]:
        """Replica reads by where they went (empty without replicas)."""
        return dict(self.replicas.sources) if self.replicas is not None else {}

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
        # Work still holding a connection (a write whose caller went away, a cancelled
        # statement's clean-up) finishes first: checked in after the pool is gone, its
        # connection would never be closed; and a write not yet started would open one in
        # the pool that replaces it, which nothing disposes (``store/pool_drain.py``).
        if self._detached:
            await asyncio.wait(set(self._detached), timeout=RETURN_GRACE_SECONDS)
        await dispose_when_returned(self.engine)
        if self.replicas is not None:
            await self.replicas.dispose()
        if not self._threads:
            return
        # Under the write lock: a write still running finishes first. The threads go too;
        # later work starts others.
        assert self._write_lock is not None
        async with self._write_lock:
            threads, self._threads = self._threads, {}
            for executor in threads.values():
                executor.shutdown(wait=True)
            for engine in (self._writer_engine, self._reader_engine):
                if engine is not None:
                    engine.dispose()


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
