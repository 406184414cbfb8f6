"""The few database reads and writes the real-time gateway needs that no REST route does.

- which conversations a user is in (ids only: the hub subscribes before the full read);
- who may see a user's presence (the rule is ``services.audience``'s);
- ``users.last_seen_at``, written when a user goes offline;
- everything ``ready`` needs, in one transaction.

The functions take the :class:`~parley.store.db.Database` explicitly, like every service
does; :class:`RealtimeReads` binds them to one, for the gateway (which sees no database).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from parley.errors import NotFound, SessionRevoked
from parley.services.accounts import User, read_users_in_sessions
from parley.services.attachment_urls import AttachmentUrls
from parley.services.audience import read_presence_audience, read_presence_audiences
from parley.services.batching import READS_CLOSE_SECONDS, Batcher
from parley.services.conversation_views import MemberView, read_member_views_of
from parley.store.db import Database
from parley.store.one_of import one_of
from parley.store.tables.accounts import users
from parley.store.tables.conversations import members

_MEMBERS_OF = select(members.c.user_id, members.c.conversation_id).where(
    one_of(members.c.user_id, "user_ids")
)


async def member_conversation_ids(db: Database, user_id: str) -> list[str]:
    return (await db.read_sync(member_conversation_ids_of, [user_id]))[user_id]


def member_conversation_ids_of(conn: Connection, user_ids: Sequence[str]) -> dict[str, list[str]]:
    """The conversations of each user given, in one statement, in a transaction of the
    caller's (a burst of identifies reads them with their sessions)."""
    found: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    for row in conn.execute(_MEMBERS_OF, {"user_ids": list(found)}):
        found[row.user_id].append(row.conversation_id)
    return found


async def presence_audience(db: Database, user_id: str) -> set[str]:
    """Users who may see ``user_id``'s presence (``user_id`` not included)."""
    return await db.read_sync(read_presence_audience, user_id)


@dataclass(frozen=True, slots=True)
class ReadyReads:
    user: User
    conversations: list[MemberView]  # as GET /conversations lists them
    audience: set[str]  # as presence_audience


@dataclass(frozen=True, slots=True)
class ReadyRequest:
    user_id: str
    session_id: str | None  # the session to check again; None: none (tests, tools)


async def ready_reads(
    db: Database, user_id: str, session_id: str | None = None, *, urls: AttachmentUrls | None
) -> ReadyReads:
    """What ``ready`` needs, in one read transaction handed to a database thread once (a
    dozen statements: through the async driver each would be three or four hand-offs),
    which is most of what a reconnect storm waits on. (The conversation ids the hub
    subscribes to first are read before, in their own transaction: see Connection.)

    ``SessionRevoked`` when ``session_id`` was revoked since identify checked it: read after
    the socket subscribed to its user, so a revocation is either seen here or announced to
    this node afterwards — never missed in between."""
    (outcome,) = await db.read_sync(ready_reads_of, [ReadyRequest(user_id, session_id)], urls)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def ready_reads_of(
    conn: Connection, requests: Sequence[ReadyRequest], urls: AttachmentUrls | None
) -> list[ReadyReads | BaseException]:
    """``ready_reads`` for several sessions in one transaction, an outcome each, in order:
    a refused one (its session revoked) fails alone. The same statements whatever the
    number of sessions: each reads its rows for every user at once, and a conversation's
    shared view is read once for everyone in it (``read_member_views_of``). (One statement
    per user made a burst of identifies cost the database threads more than the event loop.)
    """
    if conn.dialect.name == "postgresql":
        # One snapshot for the whole batch, as SQLite's read transactions have: under READ
        # COMMITTED each statement sees its own, and a message committed between a user's
        # unread count and the conversation's last_seq (read statements later) would be in
        # one and not the other (the client drops its event as already counted).
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    checked = _checked_users(conn, requests)
    user_ids = list({user.id: None for user in checked if isinstance(user, User)})
    views = read_member_views_of(conn, user_ids, urls=urls)
    audiences = read_presence_audiences(conn, user_ids)
    return [
        user if isinstance(user, BaseException) else ReadyReads(user, views[user.id], audiences[user.id])
        for user in checked
    ]


def _checked_users(conn: Connection, requests: Sequence[ReadyRequest]) -> list[User | BaseException]:
    found, open_sessions = read_users_in_sessions(
        conn,
        [request.user_id for request in requests],
        [request.session_id for request in requests if request.session_id is not None],
    )
    checked: list[User | BaseException] = []
    for request in requests:
        user = found.get(request.user_id)
        if request.session_id is not None and (request.user_id, request.session_id) not in open_sessions:
            # Also a user deactivated a moment ago, before their sessions are revoked: refused
            # like a revoked session (a NotFound here failed the identify instead).
            checked.append(SessionRevoked())
        else:
            checked.append(NotFound("No such user") if user is None else user)
    return checked


async def conversation_member_ids(db: Database, conversation_id: str) -> list[str]:
    return await db.read_sync(_conversation_member_ids, conversation_id)


def _conversation_member_ids(conn: Connection, conversation_id: str) -> list[str]:
    rows = conn.execute(
        select(members.c.user_id).where(members.c.conversation_id == conversation_id)
    )
    return [row.user_id for row in rows]


async def record_last_seen(db: Database, user_ids: Iterable[str], when: datetime) -> None:
    ids = sorted(set(user_ids))
    if not ids:
        return
    async with db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id.in_(ids)).values(last_seen_at=when))


async def last_seen(db: Database, user_ids: Iterable[str]) -> dict[str, datetime | None]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(users.c.id, users.c.last_seen_at).where(users.c.id.in_(ids))
        )
        return {row.id: row.last_seen_at for row in rows}


class RealtimeReads:
    """The functions above bound to a database: the gateway's port to them.

    ``ready`` reads are batched like sends are committed (``services.batching``, with a
    window of a few milliseconds): the sessions that identify while one read is running or
    waiting are read together in the next, one transaction and one hand-off for all of
    them — in a reconnect storm, a team's shared conversations are read once, not once per
    member. A lone session after a read of one is read at once."""

    def __init__(self, db: Database, urls: AttachmentUrls | None, *, ready_batch: int = 128) -> None:
        self._db = db
        self._urls = urls  # signs the attachment URLs of ready's last messages
        # A socket closed while waiting needs no ready: its read is dropped.
        self._ready: Batcher[ReadyRequest, ReadyReads] = Batcher.reads(
            self._read_ready, name="ready reads", max_batch=ready_batch
        )

    async def _read_ready(self, batch: Sequence[ReadyRequest]) -> list[ReadyReads | BaseException]:
        return await self._db.read_sync(ready_reads_of, batch, self._urls)

    async def close(self) -> None:
        """Read what is queued, refuse new reads (shutdown: every session is closing)."""
        await self._ready.close(timeout=READS_CLOSE_SECONDS)

    async def member_conversation_ids(self, user_id: str) -> list[str]:
        return await member_conversation_ids(self._db, user_id)

    async def presence_audience(self, user_id: str) -> set[str]:
        return await presence_audience(self._db, user_id)

    async def ready(self, user_id: str, session_id: str | None = None) -> ReadyReads:
        """``ready_reads``, batched with the other sessions identifying meanwhile."""
        return await self._ready.submit(ReadyRequest(user_id, session_id))

    async def conversation_member_ids(self, conversation_id: str) -> list[str]:
        return await conversation_member_ids(self._db, conversation_id)

    async def record_last_seen(self, user_ids: Iterable[str], when: datetime) -> None:
        await record_last_seen(self._db, user_ids, when)
