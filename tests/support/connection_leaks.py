"""Every PostgreSQL connection a test opens is closed by the end of its teardown, or that test
fails (at teardown).

An asyncpg connection left open — checked in to a pool already disposed, or in a pool never
disposed — is otherwise only found by the garbage collector, and pytest turns asyncpg's
"unclosed connection" warning into an error in whichever test is running then, never the
one that leaked it (the app's ``gc.freeze()`` can hold such garbage back for dozens of
tests). Here each connection a SQLAlchemy pool opens in this process is noted with the test
running and where it was opened; when the test's fixtures are torn down, one still open is
reported there. No garbage collection: a short list walked per test.

Connections opened with ``asyncpg.connect`` directly (test code closing its own) and those of
server subprocesses are not watched. A fixture broader than one test that keeps a PostgreSQL
connection open would be reported at its first test: such a fixture would have to be
exempted here.
"""

from __future__ import annotations

import asyncio
import traceback
import weakref
from collections.abc import Generator
from typing import Any

import asyncpg
import greenlet
import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from tests.support.paths import REPO

# Frames of Parley and of the tests name where a connection was opened; the libraries'
# would fill the report with SQLAlchemy's and asyncio's internals.
_OURS = (str(REPO / "src"), str(REPO / "tests"))


def _stack() -> list[traceback.FrameSummary]:
    """The stack here and, SQLAlchemy's async engines running their pools in a greenlet of
    their own, the stack of the coroutine that greenlet serves (where Parley's frames are)."""
    frames = list(traceback.extract_stack())
    outer = greenlet.getcurrent().parent
    while outer is not None:
        if outer.gr_frame is not None:
            frames = list(traceback.extract_stack(outer.gr_frame)) + frames
        outer = outer.parent
    return frames


class ConnectionWatch:
    def __init__(self) -> None:
        self.running: str | None = None
        self.opened: list[tuple[weakref.ref[asyncpg.Connection], str]] = []

    def on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if self.running is None or not isinstance(driver, asyncpg.Connection):
            return
        frames = [f for f in _stack() if f.filename.startswith(_OURS) and f.filename != __file__]
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no loop running in this thread
            task = None
        where = f"in task {task.get_name()!r}:\n" if task is not None else ""
        self.opened.append((weakref.ref(driver), where + "".join(traceback.format_list(frames[-8:]))))

    def start(self, test: str) -> None:
        self.running, self.opened = test, []

    def finish(self) -> list[str]:
        """Where each connection opened since ``start`` and still open was opened."""
        still_open = [where for ref, where in self.opened if (conn := ref()) is not None and not conn.is_closed()]
        self.running, self.opened = None, []
        return still_open


_watch = ConnectionWatch()
event.listen(Pool, "connect", _watch.on_connect)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _watch.start(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        result = yield  # the fixtures are torn down: every Database disposed
    finally:
        still_open = _watch.finish()
    if still_open:
        pytest.fail(
            f"{len(still_open)} PostgreSQL connection(s) opened during this test are still open "
            "after its teardown (a Database or engine not disposed, or disposed while work "
            "still held a connection). Opened at:\n\n" + "\n".join(still_open),
            pytrace=False,
        )
    return result
