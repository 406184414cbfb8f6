"""Whether login sessions are open: one session read for an authenticated request, or a
burst of gateway identifies read together (a statement for all of their sessions); and the
sessions' ``last_used_at``, written coalesced. Synchronous reads: they run in one hand-off to
a database thread (``Database.read_sync``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard, TypeVar

from sqlalchemy import Connection, bindparam, select, update

from parley.errors import SessionRevoked
from parley.store.db import Database
from parley.store.one_of import one_of
from parley.store.tables.accounts import sessions, users

T = TypeVar("T")

# Touching last_used_at on every request would turn reads into writes; once a minute is
# plenty for a "last active" column in a devices list.
LAST_USED_RESOLUTION = timedelta(seconds=60)


# Every authenticated request and every identify runs this: built once, not per call.
_STATE_COLUMNS = (sessions.c.revoked_at, sessions.c.last_used_at, users.c.deactivated_at)
_SESSION_STATE = (
    select(*_STATE_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == bindparam("session"), sessions.c.user_id == bindparam("user"))
)
# The same for a burst of identifies, in one statement: each session with its user.
_SESSIONS_STATE = (
    select(sessions.c.id, sessions.c.user_id, *_STATE_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .where(one_of(sessions.c.id, "ids"))
)

def is_open(row: Any | None) -> TypeGuard[Any]:
    """A row of ``_SESSION_STATE`` or ``_SESSIONS_STATE`` (or None): the session is open and
    its user active."""
    return row is not None and row.revoked_at is None and row.deactivated_at is None


def open_session(conn: Connection, session_id: str, user_id: str) -> datetime:
    """The session's ``last_used_at`` once it is known open and its user active (else
    ``SessionRevoked``)."""
    row = conn.execute(_SESSION_STATE, {"session": session_id, "user": user_id}).first()
    if not is_open(row):
        raise SessionRevoked()
    last_used_at: datetime = row.last_used_at
    return last_used_at


# Reads what identified users need, for several users at once: a mapping from each user id
# given to what was read for them (realtime_reads.member_conversation_ids_of). Two
# identifies of one user in a batch get the same value: it is not to be changed.
ReadForUsers = Callable[[Connection, Sequence[str]], Mapping[str, T]]


@dataclass(frozen=True, slots=True)
class IdentifyRead:
    """One identify: the session and user its token names, and what to read for the user."""

    session_id: str
    user_id: str
    read: ReadForUsers[Any]


def _open_state(rows: Mapping[str, Any], request: IdentifyRead) -> Any | None:
    """``request``'s session among ``rows`` if it is open, the token's user's and that user
    active; else None."""
    row = rows.get(request.session_id)
    return row if is_open(row) and row.user_id == request.user_id else None


def open_sessions_then(
    conn: Connection, requests: Sequence[IdentifyRead]
) -> list[tuple[datetime, Any] | BaseException]:
    """Several identifies in one transaction, in a statement or two whatever their number:
    for each, its session's ``last_used_at`` once the session is known open and its user
    active, with what ``read`` finds for the user — or ``SessionRevoked``, which fails that
    identify alone. (Anything else fails the whole read and the batcher isolates the
    request at fault.)"""
    ids = list({request.session_id: None for request in requests})
    rows = {row.id: row for row in conn.execute(_SESSIONS_STATE, {"ids": ids})}
    states = [_open_state(rows, request) for request in requests]
    wanted: dict[ReadForUsers[Any], dict[str, None]] = {}  # each read's users, once each
    for request, state in zip(requests, states, strict=True):
        if state is not None:
            wanted.setdefault(request.read, {})[request.user_id] = None
    found = {
        (read, user_id): value
        for read, user_ids in wanted.items()
        for user_id, value in read(conn, list(user_ids)).items()
    }
    return [
        SessionRevoked() if state is None else (state.last_used_at, found[request.read, request.user_id])
        for request, state in zip(requests, states, strict=True)
    ]


class SessionTouches:
    """``last_used_at`` writes, coalesced: authentications that need one at the same time
    share one transaction. After a restart every reconnecting session needs one; one
    transaction each made a reconnect storm queue behind thousands of commits.

    Each caller still returns only once its write is committed, as before; an idle server
    writes at once (no window), and no task outlives the write it does.
    """

    _UPDATE = (
        update(sessions)
        .where(sessions.c.id == bindparam("session"))
        .values(last_used_at=bindparam("used_at"))
    )

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: dict[str, datetime] = {}
        self._writer: asyncio.Task[None] | None = None

    async def touch(self, session_id: str, now: datetime) -> None:
        self._pending[session_id] = now
        while session_id in self._pending:  # not taken by a write yet: the next one takes it
            if self._writer is None:
                self._writer = asyncio.create_task(self._write(), name="session-touches")
                # Retrieved even if every waiter was cancelled meanwhile.
                self._writer.add_done_callback(lambda t: t.cancelled() or t.exception())
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    self._UPDATE, [{"session": s, "used_at": t} for s, t in sorted(batch.items())]
                )
        finally:
            self._writer = None
