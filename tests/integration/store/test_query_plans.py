"""The hot statements are searched by index, on SQLite and PostgreSQL, in a populated database.

The operations clients repeat all day — sending (the group commit's checks), history pages,
``changes``, the conversation list and ``ready`` (last messages, unread counts), read
receipts, session and token lookups, reactions, search and its lookups by id — run through
the services against thousands of rows; every statement they run is captured and explained
(``tests.support.query_plan_checks``):

- none reads a whole big table (SQLite without and with ANALYZE statistics — Parley never
  runs ANALYZE; PostgreSQL with sequential scans off, so only a missing index shows);
- those reading messages, reactions or attachments read about what they return, within the
  operation's budget (an index range over a whole conversation is no lookup either).

``test_the_checks_catch_the_bad_forms`` runs the forms these statements had, or easily get,
through the same checks: each must be caught where it is slow.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Select, and_, bindparam, func, or_, select, tuple_

from parley.clock import utcnow
from parley.container import Container
from parley.errors import ParleyError
from parley.services import conversation_views
from parley.services import realtime_reads as gateway_queries
from parley.services.attachment_records import load_public_for_messages
from parley.services.auth import ClientInfo
from parley.services.messages import DEFAULT_PAGE
from parley.store.tables.accounts import sessions
from parley.store.tables.catalog import complete_metadata
from parley.store.tables.conversations import members
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages
from tests.conftest import NO_SEND_LIMITS
from tests.support.query_plan_checks import (
    Inspector,
    SqliteInspector,
    Statement,
    capture,
    capture_on,
    inspector_for,
    unique,
)
from tests.support.query_plan_data import HEAVY_USER_BEHIND, Dataset, Scale, populate

pytestmark = pytest.mark.settings(**NO_SEND_LIMITS)

# Big enough that a scan or a whole-conversation range is far over any budget below: the
# busiest conversation holds about a quarter of 8,000 messages.
SCALE = Scale(users=80, groups=16, directs=24, messages=8_000, sessions_per_user=3,
              attachment_share=0.25)  # fmt: skip
PAGE_BUDGET = 4 * (DEFAULT_PAGE + 1)  # a page, its reactions (up to 3 each), previews, files
LOOKUP_BUDGET = 10
# Per conversation in a list: its last message with what is loaded for it, and the
# messages after the read mark that the unread count reads.
LIST_ROWS_PER_CONVERSATION = 4 + 2 * HEAVY_USER_BEHIND
# Parents Parley deletes rows of: each foreign key to them is looked up on delete (users
# are deactivated, never deleted).
DELETED_PARENTS = ("conversations", "messages", "sessions")
RETENTION_BATCH = 500  # PARLEY_RETENTION_BATCH_SIZE's default
_GROWING = re.compile(r"\b(FROM|JOIN) (messages|reactions|attachments)\b")
# The full-text statement reads what its words match in the whole index, then keeps the
# caller's conversations: its work follows the words, not the answer; a term no index holds
# (one character) walks the newest messages first, a fixed number of index entries (SQLite's
# WALK_ENTRIES, "AS walked"); and the search indexer, running meanwhile, reads the text of one batch of
# the backlog (BATCH_SIZE ids: its statement that feeds the bigram keys). Plans still checked.
_FULL_TEXT = (
    "messages_fts",
    "search_vector",
    "AS walked",
    "FROM messages AS m JOIN message_search AS s ON s.message_id = m.id",
)

Run = Callable[[Container, Dataset], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    run: Run
    # Rows of messages/reactions/attachments one statement may read; None: writes only.
    budget: Callable[[Dataset], int] | None
    expect: tuple[str, ...] = field(default=())  # SQL it must have run (the checks cover it)


def per_conversation(rows: int) -> Callable[[Dataset], int]:
    """A budget of ``rows`` for each of the heavy user's conversations."""
    return lambda data: rows * len(data.conversations_of(data.heavy_user))


async def _send(c: Container, d: Dataset) -> None:
    heavy, busy = d.heavy_user, d.busiest
    middle = d.message_ids[busy][len(d.message_ids[busy]) // 2]
    await c.messages.send(heavy, busy, "hi @user0003", client_msg_id="plans-1",
                          reply_to_id=middle, attachment_ids=[d.unclaimed[heavy]])  # fmt: skip
    conversation, sender, client_msg_id = d.client_ids[len(d.client_ids) // 2]
    try:  # a resend of an earlier message: found by its client id
        await c.messages.send(sender, conversation, "again", client_msg_id=client_msg_id)
    except ParleyError:
        pass  # different text: a conflict, found the same way
    await c.messages.send(heavy, d.direct_ids[0], "direct")  # blocks are checked


async def _history(c: Container, d: Dataset) -> None:
    busy, ids = d.busiest, d.message_ids[d.busiest]
    await c.messages.history(d.heavy_user, busy)
    await c.messages.history(d.heavy_user, busy, before_seq=len(ids) // 2)
    await c.messages.history(d.heavy_user, busy, after_seq=len(ids) // 3)
    await c.messages.history(d.heavy_user, busy, around_id=ids[len(ids) // 4])


async def _changes(c: Container, d: Dataset) -> None:
    await c.messages.changes(d.heavy_user, d.busiest, after_seq=d.last_seq[d.busiest] - 10)


async def _ready(c: Container, d: Dataset) -> None:
    await gateway_queries.member_conversation_ids(c.db, d.heavy_user)
    await gateway_queries.ready_reads(c.db, d.heavy_user, d.session_ids[d.heavy_user][1], urls=None)
    await c.conversations.list_for(d.heavy_user)
    await c.conversations.get(d.heavy_user, d.busiest)


async def _receipts(c: Container, d: Dataset) -> None:
    busy = d.busiest
    await c.receipts.mark_read(d.heavy_user, busy, d.last_seq[busy])
    await c.receipts.for_message(d.heavy_user, d.message_ids[busy][-3])


async def _sessions(c: Container, d: Dataset) -> None:
    pair, _ = await c.auth.open_session(d.heavy_user, ClientInfo(device_name="plans"))
    await c.auth.authenticate(pair.access_token)
    await c.auth.refresh(pair.refresh_token, ClientInfo())
    await c.auth.list_sessions(d.heavy_user)


async def _reactions(c: Container, d: Dataset) -> None:
    target = d.message_ids[d.busiest][-4]
    await c.reactions.add(d.heavy_user, target, "🚀")
    await c.reactions.remove(d.heavy_user, target, "🚀")


async def _search(c: Container, d: Dataset) -> None:
    first = await c.search.search(d.heavy_user, "deploy", limit=20)
    await c.search.search(d.heavy_user, "deploy", limit=20, cursor=first["next_cursor"])
    await c.search.search(d.heavy_user, "review", conversation_id=d.busiest, has="attachment")
    # One character no index holds: a common one ends the walk with a page, a rare one
    # (not in the data) walks to its end and checks the rest of the history.
    await c.search.search(d.heavy_user, "deploy 東", limit=20)
    await c.search.search(d.heavy_user, "deploy 鰻", limit=20)


async def _presence(c: Container, d: Dataset) -> None:
    await gateway_queries.presence_audience(c.db, d.heavy_user)
    await gateway_queries.last_seen(c.db, d.user_ids[:20])


async def _edit_and_delete(c: Container, d: Dataset) -> None:
    sent = await c.messages.send(d.heavy_user, d.busiest, "typo", client_msg_id="plans-2")
    await c.messages.edit(d.heavy_user, sent.message.id, "fixed @user0004")
    await c.messages.delete(d.heavy_user, sent.message.id)


async def _retention(c: Container, d: Dataset) -> None:
    """A daily sweep where one group keeps a day: its messages go in bounded batches."""
    groups = [g for g in d.conversations_of(d.heavy_user) if g not in d.direct_ids]
    short = groups[0] if groups[0] != d.busiest else groups[1]
    await c.retention.set_conversation_days(d.heavy_user, short, 1)
    await c.retention.run(as_of=utcnow() + timedelta(days=2))


async def _threads_and_pins(c: Container, d: Dataset) -> None:
    """DESIGN §6.5: replies in a thread (the root's new version, follows), the thread's
    page, the followed threads, a read mark, a pin and the pins."""
    heavy, busy = d.heavy_user, d.busiest
    root = d.message_ids[busy][-5]
    for i in range(3):
        await c.messages.send(heavy, busy, f"in the thread {i}", thread_root_id=root)
    await c.threads.replies(heavy, root)
    await c.threads.followed(heavy)
    await c.threads.mark_read(heavy, root, d.last_seq[busy])
    await c.pins.pin(heavy, root)
    await c.pins.list(heavy, busy)


async def _directory(c: Container, d: Dataset) -> None:
    """DESIGN §6.3: the public groups (none made public here: the index must still serve)."""
    await c.directory.list(d.heavy_user)
    await c.directory.list(d.heavy_user, q="group")


async def _delete_conversation(c: Container, d: Dataset) -> None:
    groups = [g for g in d.conversations_of(d.heavy_user) if g not in d.direct_ids]
    await c.conversations.delete(d.heavy_user, groups[-1])  # the heavy user owns theirs


OPERATIONS = [
    Operation("send", _send, lambda d: LOOKUP_BUDGET, expect=(
        "conversations.type, conversations.last_seq", "FROM blocks", "messages.client_msg_id =",
        "SELECT users.id, users.username_key",  # the mentions, resolved
        "UPDATE conversations SET last_seq", "UPDATE attachments SET message_id",
    )),
    Operation("history pages", _history, lambda d: PAGE_BUDGET,
              expect=("ORDER BY messages.seq DESC",)),
    Operation("changes", _changes, lambda d: PAGE_BUDGET, expect=("messages.version_seq >",)),
    Operation("ready and conversation list", _ready, per_conversation(LIST_ROWS_PER_CONVERSATION),
              expect=("recent.seq DESC", "members.last_read_seq")),
    Operation("read receipts", _receipts, lambda d: LOOKUP_BUDGET, expect=("UPDATE members",)),
    Operation("sessions and tokens", _sessions, lambda d: LOOKUP_BUDGET,
              expect=("refresh_tokens.token_hash =", "sessions.id =")),
    Operation("reactions", _reactions, lambda d: LOOKUP_BUDGET, expect=("INSERT INTO reactions",)),
    Operation("search and its lookups by id", _search, lambda d: PAGE_BUDGET, expect=("AS walked",)),
    Operation("presence", _presence, lambda d: LOOKUP_BUDGET),
    # Before edit and delete: its attachment sweep runs in the background after it.
    Operation("threads and pins", _threads_and_pins, lambda d: LOOKUP_BUDGET,
              expect=("messages.thread_root_id", "thread_follows", "messages.pinned_at")),
    Operation("public group directory", _directory, None,
              expect=("visibility = 'public'",)),
    Operation("edit and delete", _edit_and_delete, lambda d: LOOKUP_BUDGET),
    # A batch reads its next messages by seq: one bounded range of one conversation.
    Operation("retention sweep", _retention, lambda d: RETENTION_BATCH + LOOKUP_BUDGET,
              expect=("messages.seq >", "UPDATE conversations SET expired_through_seq",
                      "DELETE FROM messages")),
    Operation("delete a conversation", _delete_conversation, None,
              expect=("DELETE FROM conversations",)),
]  # fmt: skip


def foreign_key_lookups(data: Dataset) -> list[tuple[str, Select[Any]]]:
    """What deleting a parent row makes the database look up: the rows referencing it
    (ON DELETE CASCADE / SET NULL), by the referencing column."""
    value = {"conversations": data.busiest, "messages": data.message_ids[data.busiest][0],
             "sessions": data.session_ids[data.heavy_user][0]}  # fmt: skip
    lookups: list[tuple[str, Select[Any]]] = []
    for table in complete_metadata().sorted_tables:
        for key in table.foreign_keys:
            parent = key.column.table.name
            if parent in DELETED_PARENTS:
                name = f"{table.name}.{key.parent.name} -> {parent}"
                lookups.append((name, select(table).where(key.parent == value[parent])))
    return lookups


async def run_captured(
    container: Container, run: Callable[[], Awaitable[object]]
) -> list[Statement]:
    with capture(container.db) as seen:
        await run()  # a send returns once its batch is committed
    return unique(seen)


async def executed(
    container: Container, query: Any, params: dict[str, Any] | None = None
) -> Statement:
    """``query`` as the driver gets it (run once, in a read transaction; only this
    connection's statements are seen, not the search indexer's meanwhile)."""
    async with container.db.read() as conn:
        with capture_on(conn.sync_connection) as seen:
            await conn.execute(query, params or {})
    return seen[-1]


async def problems_of(
    inspector: Inspector, statement: Statement, budget: int | None, label: str
) -> list[str]:
    problems: list[str] = []
    scans = await inspector.full_scans(statement)
    if scans:
        problems.append(f"{label}: reads a whole table {scans}\n  {statement.short()}")
    measured = statement.is_read and _GROWING.search(statement.sql)
    if budget is not None and measured and not any(t in statement.sql for t in _FULL_TEXT):
        rows = await inspector.rows_read(statement)
        if rows > budget:
            plan = (await inspector.plan(statement)).replace("\n", "\n    ")
            problems.append(f"{label}: reads ~{rows} rows, budget {budget}\n  "
                            f"{statement.short()}\n    {plan}")  # fmt: skip
    return problems


async def check_everything(
    inspector: Inspector,
    ran: dict[str, list[Statement]],
    lookups: Sequence[tuple[str, Statement]],
    data: Dataset,
    state: str,
) -> list[str]:
    problems: list[str] = []
    for operation in OPERATIONS:
        budget = operation.budget(data) if operation.budget else None
        for statement in ran[operation.name]:
            label = f"{operation.name}, {state}"
            problems += await problems_of(inspector, statement, budget, label)
    for name, statement in lookups:
        problems += await problems_of(inspector, statement, None, f"foreign key {name}, {state}")
    return problems


async def test_hot_statements_are_searched_by_index(container: Container) -> None:
    sqlite = container.db.is_sqlite
    data = await populate(container.db, SCALE, statistics=not sqlite)
    ran: dict[str, list[Statement]] = {}
    for operation in OPERATIONS:
        ran[operation.name] = await run_captured(container, lambda: operation.run(container, data))
        missing = [e for e in operation.expect if not any(e in s.sql for s in ran[operation.name])]
        assert not missing, f"{operation.name} no longer runs {missing}: update the checks"
    lookups = [(name, await executed(container, q)) for name, q in foreign_key_lookups(data)]
    problems: list[str] = []
    async with inspector_for(container.db) as inspector:
        if isinstance(inspector, SqliteInspector):  # as Parley leaves it, then analysed
            problems += await check_everything(inspector, ran, lookups, data, "no statistics")
            inspector.gather_statistics()
        problems += await check_everything(inspector, ran, lookups, data, "statistics")
    assert not problems, "\n".join(problems)


# --- the checks can fail


@dataclass(frozen=True, slots=True)
class BadForm:
    name: str
    slow_on: frozenset[str]  # the backends where it is slow: there the checks must catch it
    statement: Callable[[Container, Dataset], Awaitable[Statement]]
    budget: Callable[[Dataset], int] | None = None
    ddl: tuple[str, ...] = ()  # schema changes it needs, undone after


Build = Callable[[Dataset], tuple[Any, dict[str, Any]]]


def _query(build: Build) -> Callable[[Container, Dataset], Awaitable[Statement]]:
    """The statement ``build`` makes, as the driver gets it."""
    async def run(c: Container, d: Dataset) -> Statement:
        query, params = build(d)
        return await executed(c, query, params)

    return run


def _client_ids_as_row_values(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """How the group commit first looked up repeated client ids: scanned on SQLite."""
    keys = d.client_ids[:3]
    column = tuple_(messages.c.conversation_id, messages.c.sender_id, messages.c.client_msg_id)
    return select(messages).where(column.in_(keys)), {}


def _session_by_function_of_id(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """A function of an indexed column hides the index."""
    session_id = d.session_ids[d.heavy_user][1]
    return select(sessions).where(func.lower(sessions.c.id) == session_id.lower()), {}


def _last_messages_by_group_max(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """The conversation list's last messages before: every message of every conversation
    read to find each max(seq)."""
    ids = bindparam("ids", expanding=True)
    latest = (
        select(messages.c.conversation_id, func.max(messages.c.seq).label("seq"))
        .where(messages.c.conversation_id.in_(ids))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    pair = tuple_(messages.c.conversation_id, messages.c.seq)
    query = select(messages).where(pair.in_(select(latest.c.conversation_id, latest.c.seq)))
    return query, {"ids": d.conversations_of(d.heavy_user)}


def _unread_by_join(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """Unread counts before: PostgreSQL joined every message of the conversations."""
    user = bindparam("user_id")
    query = (
        select(messages.c.conversation_id, func.count().label("n"))
        .join(members, and_(members.c.conversation_id == messages.c.conversation_id,
                            members.c.user_id == user))  # fmt: skip
        .where(messages.c.conversation_id.in_(bindparam("ids", expanding=True)),
               conversation_views.unread_condition(user))  # fmt: skip
        .group_by(messages.c.conversation_id)
    )
    return query, {"ids": d.conversations_of(d.heavy_user), "user_id": d.heavy_user}


def _page_by_creation_time(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """A page in created_at order: no index has it, so the whole conversation is sorted."""
    query = (
        select(messages)
        .where(messages.c.conversation_id == d.busiest)
        .order_by(messages.c.created_at.desc())
        .limit(DEFAULT_PAGE + 1)
    )
    return query, {}


def _by_conversation(d: Dataset) -> tuple[Any, dict[str, Any]]:
    return select(attachments).where(attachments.c.conversation_id == d.busiest), {}


def _unindexed_columns(d: Dataset) -> tuple[Any, dict[str, Any]]:
    """A condition no index has."""
    return select(messages).where(or_(messages.c.kind == "x", messages.c.mentions == "x")), {}


async def _files_of_a_page(c: Container, d: Dataset) -> Statement:
    """What every message read runs to attach files (attachment_records)."""
    page = d.message_ids[d.busiest][-DEFAULT_PAGE:]
    async with c.db.read() as conn:
        with capture_on(conn.sync_connection) as seen:
            await conn.run_sync(load_public_for_messages, page, None)
    return seen[-1]


BAD_FORMS = [
    BadForm("client ids as row values", frozenset({"sqlite"}), _query(_client_ids_as_row_values)),
    BadForm("session by lower(id)", frozenset({"sqlite", "postgres"}),
            _query(_session_by_function_of_id)),
    BadForm("unindexed columns", frozenset({"sqlite", "postgres"}), _query(_unindexed_columns)),
    BadForm("last messages by max(seq) per group", frozenset({"sqlite", "postgres"}),
            _query(_last_messages_by_group_max), per_conversation(LIST_ROWS_PER_CONVERSATION)),
    BadForm("unread counts by join", frozenset({"postgres"}), _query(_unread_by_join),
            per_conversation(LIST_ROWS_PER_CONVERSATION)),
    BadForm("history page by created_at", frozenset({"sqlite", "postgres"}),
            _query(_page_by_creation_time), lambda d: PAGE_BUDGET),
    BadForm("attachments.conversation_id without its index", frozenset({"sqlite", "postgres"}),
            _query(_by_conversation), ddl=("DROP INDEX ix_attachments_conversation_gallery",)),
    # SQLite without statistics takes "deleted_at IS NULL" on an index of every row for
    # a selective lookup (migration 0004 made the index partial).
    BadForm("files of a page with deleted_at indexed whole", frozenset({"sqlite"}),
            _files_of_a_page, lambda d: PAGE_BUDGET,
            ddl=("DROP INDEX ix_attachments_deleted_at",
                 "CREATE INDEX ix_attachments_deleted_at ON attachments (deleted_at)")),
]  # fmt: skip


async def test_the_checks_catch_the_bad_forms(container: Container, backend: str) -> None:
    data = await populate(container.db, SCALE, statistics=not container.db.is_sqlite)
    missed: list[str] = []
    async with inspector_for(container.db) as inspector:
        for bad in BAD_FORMS:
            statement = await bad.statement(container, data)
            budget = bad.budget(data) if bad.budget else None
            async with inspector.altered(bad.ddl):
                problems = await problems_of(inspector, statement, budget, bad.name)
            if backend in bad.slow_on and not problems:
                missed.append(f"{bad.name}: not caught\n  {statement.short()}\n"
                              f"  {await inspector.plan(statement)}")  # fmt: skip
    assert not missed, "\n".join(missed)
