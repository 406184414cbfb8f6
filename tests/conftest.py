"""Shared fixtures: a real database per backend, the ASGI app, and an HTTP client.

Store, service and API tests that take ``backend`` run once on SQLite and once on
PostgreSQL. PostgreSQL is found through ``PARLEY_TEST_DATABASE_URL`` (default: the local
server as ``postgres``); each run creates its own uniquely named database and drops it at
the end. Without PostgreSQL those tests are skipped loudly — except under ``CI=true``,
where a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from parley.app import create_app
from parley.config import Settings, normalise_database_url
from parley.container import Container
from parley.store import migrate
from parley.store.db import Database
from parley.store.tables.catalog import complete_metadata
from tests.support.free_ports import free_port

pytest_plugins = ["tests.support.redis_fixtures", "tests.support.connection_leaks"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get(
    "PARLEY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgres"]
TEST_PASSWORD = "a perfectly fine passphrase"


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control that starts the suite in the background (`make test &`
    # in a script) makes it ignore SIGINT, and every child inherits that: the tests that
    # stop `parley chat tail` with Ctrl-C (tests/support/chat_cli.py) would wait for ever.
    # A handler, unlike "ignore", is reset in each child.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def need_service(name: str, how: str, error: BaseException | None = None) -> None:
    message = f"{name} is not available ({error!r}). {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    print(f"\n*** SKIPPING {name} TESTS: {message} ***\n")
    pytest.skip(message)


def test_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "secret_key": "test-secret-" + "x" * 40,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "access_log": False,
        "group_commit_window_ms": 1.0,
        # Every test client shares one address; the address limits have their own tests.
        "registrations_per_address": 100_000,
        "login_address_failures_allowed": 100_000,
    }
    values.update(overrides)
    return Settings(**values)


class PostgresTestDatabase:
    """One database for the whole run, emptied between tests (TRUNCATE is fast)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = normalise_database_url(admin_url)
        self.name = f"parley_test_{secrets.token_hex(6)}"
        base, _, _ = self.admin_url.rpartition("/")
        self.url = f"{base}/{self.name}"

    async def create(self) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        finally:
            await engine.dispose()
        db = Database(self.url, pool_size=2)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    async def empty(self) -> None:
        db = Database(self.url, pool_size=1)
        try:
            names = ", ".join(f'"{t.name}"' for t in complete_metadata().sorted_tables)
            async with db.transaction() as conn:
                await conn.execute(text(f"TRUNCATE {names} CASCADE"))
        finally:
            await db.dispose()

    async def drop(self) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            await engine.dispose()


@pytest.fixture(scope="session")
async def postgres_database() -> AsyncIterator[PostgresTestDatabase]:
    database = PostgresTestDatabase(PG_ADMIN_URL)
    try:
        await asyncio.wait_for(database.create(), 30)
    except Exception as exc:
        need_service(
            "PostgreSQL",
            "Start it, or set PARLEY_TEST_DATABASE_URL=postgresql://user@host:port/db.",
            exc,
        )
    try:
        yield database
    finally:
        await database.drop()


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.dispose()
    return path


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def empty_postgres_url(postgres_database: PostgresTestDatabase) -> str:
    await postgres_database.empty()
    return postgres_database.url


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of the test's backend.

    Synchronous on purpose: it picks its async dependency by backend at run time, so SQLite
    tests never need PostgreSQL to be up.
    """
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "parley.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


NO_SEND_LIMITS: dict[str, Any] = {
    "message_rate_per_second": 100_000.0,
    "message_burst": 100_000,
    "conversation_message_rate_per_second": 100_000.0,
    "conversation_message_burst": 100_000,
    "api_rate_per_second": 100_000.0,
    "api_burst": 100_000,
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Test settings; ``@pytest.mark.settings(name=value, ...)`` overrides fields."""
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    return test_settings(tmp_path, database_url, **overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def container(app: FastAPI) -> Container:
    result: Container = app.state.parley
    return result


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as http:
        yield http


class UserHandle:
    """A registered, logged-in user for tests: id, tokens and ready-made headers."""

    def __init__(self, login: dict[str, Any], password: str) -> None:
        self.id: str = login["user"]["id"]
        self.username: str = login["user"]["username"]
        self.access_token: str = login["access_token"]
        self.refresh_token: str = login["refresh_token"]
        self.session_id: str = login["session_id"]
        self.password = password

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def make_user(
    client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD
) -> UserHandle:
    response = await client.post(
        "/api/v1/auth/register", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return UserHandle(response.json(), password)


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the PostgreSQL half so it can be selected (``-m postgres``) or counted, and run
    the browser tests last: Playwright's sync API keeps an event loop running in this thread
    from the first browser test to the end of the session, and an async test after it could
    not start its own (the order must not depend on how test files sort)."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))  # stable
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)
