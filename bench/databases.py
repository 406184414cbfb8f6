"""Throwaway benchmark databases: a SQLite file, or a PostgreSQL database created for one
run and dropped after it (``PARLEY_TEST_DATABASE_URL`` names the server, as for the tests);
the settings a benchmark's container runs with on it; and timing a call on it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.config import Settings, normalise_database_url
from parley.container import Container, build_container
from parley.store import migrate

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


def bench_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a benchmark's container: the cheapest Argon2 (registering users is not
    what is measured), a fixed secret, and ``overrides``."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="b" * 48,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        **overrides,
    )


@asynccontextmanager
async def bench_container(kind: str, directory: Path, name: str, **overrides: Any) -> AsyncIterator[Container]:
    """A container on a fresh, migrated database named ``name`` (:func:`make_database`),
    closed and the database dropped afterwards."""
    url, drop = await make_database(kind, directory, name)
    container = build_container(bench_settings(directory / f"data-{name}", url, **overrides))
    try:
        await migrate.upgrade(container.db)
        yield container
    finally:
        await container.close()
        if drop is not None:
            await drop()


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """Milliseconds per call, ``repeat`` times, after one warm-up call (caches, prepared
    statements)."""
    await call()
    laps = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        laps.append((time.perf_counter() - began) * 1000)
    return laps


def database_kinds(choice: str) -> list[str]:
    """``--database`` of a benchmark: sqlite, postgres or both."""
    return ["sqlite", "postgres"] if choice == "both" else [choice]


async def run_each(
    benches: list[Callable[[Path], Awaitable[dict[str, Any]]]], table: Callable[[dict[str, Any]], list[str]]
) -> list[dict[str, Any]]:
    """Each benchmark in turn in one temporary directory, its table printed as it ends."""
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for bench in benches:
            result = await bench(Path(directory))
            print("\n".join(table(result)), flush=True)
            results.append(result)
    return results


def write_results(path: Path | None, benchmark: str, results: list[dict[str, Any]]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"benchmark": benchmark, "results": results}, indent=2))
