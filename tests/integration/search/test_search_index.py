"""The search indexes on both databases: a waiting mark in the writing transaction, indexed
in batches after it (test_search_indexer.py),
consistent after edits, deletes and cascades, used by the queries, rebuilt by the
migration (down and up again) — and no input reaches the database as broken SQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, insert, select

from parley.clock import utcnow
from parley.container import Container
from parley.errors import ValidationFailed
from parley.ids import new_id
from parley.services import search_sqlite
from parley.services.search_bigrams import bigram_keys
from parley.services.search_postgres_terms import TermConditions
from parley.services.search_query import SearchFilters, parse_query
from parley.store.migrate import alembic_config, upgrade
from parley.store.tables.messages import messages
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import open_group, send
from tests.support.random_search_queries import random_queries
from tests.support.search_index_checks import check_sqlite_index
from tests.support.search_shapes import backend  # noqa: F401  (replaces conftest's: adds PostgreSQL through indexes)

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def hits(container: Container, user: UserHandle, q: str) -> list[str]:
    result = await container.search.search(user.id, q, limit=50)
    return [hit["message"]["content"] for hit in result["results"]]


async def test_index_follows_every_change(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    keep = await open_group(client, alice, [bob], name="Keep")
    doomed = await open_group(client, alice, [bob], name="Doomed")
    first = await send(client, alice, keep["id"], "alpha bravo charlie")
    await send(client, alice, keep["id"], "delta echo")
    await send(client, alice, doomed["id"], "alpha in a doomed group")
    await client.patch(f"/api/v1/messages/{first['id']}", json={"content": "alpha zulu"}, headers=alice.headers)
    await client.put(f"/api/v1/messages/{first['id']}/reactions/👍", headers=bob.headers)
    gone = await send(client, alice, keep["id"], "foxtrot golf")
    await client.delete(f"/api/v1/messages/{gone['id']}", headers=alice.headers)
    assert (await client.delete(f"/api/v1/conversations/{doomed['id']}", headers=alice.headers)).status_code == 204

    assert await hits(container, bob, "alpha") == ["alpha zulu"]
    assert await hits(container, bob, "bravo") == []
    assert await hits(container, bob, "foxtrot") == []
    if container.db.is_sqlite:
        await check_sqlite_index(container.db)


async def test_the_waiting_mark_is_written_in_the_message_transaction(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A send writes no index entry, only its waiting mark (migration 0017): visible to the
    transaction that made it, gone with it when it rolls back."""
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    db = container.db
    message_id = new_id()
    if db.is_sqlite:
        indexed = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'uncommitted'"
        waiting = f"SELECT count(*) FROM message_search_queue WHERE message_id = '{message_id}'"
    else:
        indexed = (
            "SELECT count(*) FROM messages "
            "WHERE search_vector @@ to_tsquery('parley_search', 'uncommitted')"
        )
        waiting = (
            f"SELECT count(*) FROM messages WHERE id = '{message_id}' AND search_vector IS NULL"
        )
    now = utcnow()

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction() as conn:
            await conn.execute(
                insert(messages).values(
                    id=message_id, conversation_id=group["id"], seq=1000, version_seq=1000,
                    sender_id=alice.id, kind="text", content="uncommitted words",
                    mentions="[]", created_at=now,
                )
            )
            assert (await conn.exec_driver_sql(waiting)).scalar_one() == 1
            assert (await conn.exec_driver_sql(indexed)).scalar_one() == 0  # not on the send path
            raise Abandon
    async with db.read() as conn:
        assert (await conn.exec_driver_sql(waiting)).scalar_one() == 0
    assert await hits(container, bob, "uncommitted") == []
    if db.is_sqlite:
        await check_sqlite_index(db)


async def test_queries_use_the_indexes(client: httpx.AsyncClient, container: Container) -> None:
    """The SQL names the indexed expressions exactly (PostgreSQL) or the FTS5 tables
    (SQLite), so no search reads every message."""
    alice = await make_user(client, "alice")
    query = parse_query("quarterly report*")
    db = container.db
    if db.is_sqlite:
        statement = search_sqlite.partial_statement(query.terms, alice.id, SearchFilters(), None, None, 21, frozenset())
    else:
        # Just the first term ("quarterly": words or substring), in the shape that reads the
        # indexes: on an empty table the planner rightly prefers other paths; the point is
        # that the term *can* use both.
        first = TermConditions.of(query.terms[:1]).through_indexes([], partial_only=False)
        statement = select(messages.c.id).where(first)
    sql = str(statement.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with db.read() as conn:
        if db.is_sqlite:
            lines = [str(row[-1]) for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert any("messages_fts VIRTUAL TABLE" in line for line in lines), lines
            assert any("messages_fts_trigram VIRTUAL TABLE" in line for line in lines), lines
            assert not any(line == "SCAN messages" for line in lines), lines
        else:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan_text = "\n".join(str(r[0]) for r in await conn.exec_driver_sql("EXPLAIN " + sql))
            assert "ix_messages_search_words" in plan_text, plan_text
            assert "ix_messages_search_trigrams" in plan_text, plan_text


async def test_short_substrings_use_the_bigram_index(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Two characters of a script without spaces, or two emoji, are found through a bigram
    index, not by reading the caller's messages. PostgreSQL: ix_messages_search_bigrams
    (migration 0020), the index expression exactly, the term's bigrams by the same function,
    lower-cased as ILIKE compares. SQLite: messages_fts_bigram (migration 0021)."""
    db = container.db
    if db.is_sqlite:
        alice = await make_user(client, "alice")
        for q in ("東京", "👍🏽", "A東", "東京 行く"):
            terms = parse_query(q).terms
            async with db.read() as conn:
                selective = await search_sqlite.selective_keys(conn, terms)
            assert selective, q  # nothing indexed yet: every key is rare
            statement = search_sqlite.partial_statement(terms, alice.id, SearchFilters(), None, None, 21, selective)
            sql = str(statement.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
            async with db.read() as conn:
                lines = [str(row[-1]) for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert any("messages_fts_bigram VIRTUAL TABLE" in line for line in lines), (q, lines)
            # LIKE only checks what the index found: never on the caller's every message.
            assert "short_substring_text.content LIKE" in sql and "messages.content LIKE" not in sql, (q, sql)
        return
    async with db.read() as conn:
        bigrams = await conn.exec_driver_sql(
            "SELECT parley_search_bigrams('Plain A東京 👍🏽'), parley_search_bigrams('plain text')"
        )
        mixed, plain = bigrams.one()
    assert {"a東", "東京", " 👍", "👍🏽"} <= set(mixed) and "pl" not in mixed
    assert plain == []
    for q in ("東京", "👍🏽", "A東"):
        condition = TermConditions.of(parse_query(q).terms).through_indexes([], partial_only=False)
        sql = str(
            select(messages.c.id)
            .where(condition)
            .compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
        )
        async with db.read() as conn:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan_text = "\n".join(str(r[0]) for r in await conn.exec_driver_sql("EXPLAIN " + sql))
        assert "ix_messages_search_bigrams" in plan_text, plan_text


async def test_a_common_short_substring_is_matched_by_like(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: keys more documents hold than ``BIGRAM_DOCUMENTS_MAX`` are matched by LIKE on
    the caller's messages instead (checking every document found would cost more); rare keys
    still go through the index. The hits are the same either way."""
    monkeypatch.setattr(search_sqlite, "BIGRAM_DOCUMENTS_MAX", 2)
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    common = [f"東京 {n}" for n in range(3)]
    for text_ in [*common, "京都 once"]:
        await send(client, alice, group["id"], text_)
    assert set(await hits(container, bob, "東京")) == set(common)
    assert await hits(container, bob, "京都") == ["京都 once"]
    if container.db.is_sqlite:
        terms = parse_query("東京 京都").terms
        async with container.db.read() as conn:
            selective = await search_sqlite.selective_keys(conn, terms)
        assert selective == {bigram_keys("京都")}


async def test_a_term_no_index_answers_walks_the_newest_messages_first(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: a short substring whose keys are too common for the bigram index (here: any)
    walks the newest messages through ix_messages_search_recent (migration 0022),
    WALK_ENTRIES of them (every conversation's), checking the caller's, then checks the rest
    of the history. Page by page and with each filter, the hits are exactly the caller's
    matches, newest first, on both sides of the walk's end (messages committed together
    share their created_at), and none from a conversation the caller is not in."""
    monkeypatch.setattr(search_sqlite, "BIGRAM_DOCUMENTS_MAX", 0)
    monkeypatch.setattr(search_sqlite, "WALK_ENTRIES", 3)
    alice, bob, carol = [await make_user(client, name) for name in ("alice", "bob", "carol")]
    mine = await open_group(client, alice, [bob])
    theirs = await open_group(client, bob, [carol])
    sent: list[dict[str, Any]] = []
    for n in range(6):
        await send(client, bob, theirs["id"], f"新東京 not for alice {n}")
        sent.append(await send(client, alice, mine["id"], f"新東京 {n}"))  # "東京" inside a word: tier 1
        await send(client, alice, mine["id"], f"plain {n}")
    # Sent at once: some share a group commit, so their created_at too.
    sent += await asyncio.gather(*(send(client, sender, mine["id"], f"新東京 at once {n}")
                                   for n, sender in enumerate([alice, bob, alice, bob, alice])))  # fmt: skip
    for n in range(4):  # the newest: no hit among them
        await send(client, alice, mine["id"], f"nothing here {n}")
    async with container.db.read() as conn:  # created_at to the microsecond (the API says ms)
        keys = (await conn.execute(select(messages.c.id, messages.c.created_at).where(
            messages.c.id.in_([m["id"] for m in sent])))).all()  # fmt: skip
    newest_first_ids = [row.id for row in sorted(keys, key=lambda row: (row.created_at, row.id), reverse=True)]
    senders = {m["id"]: m["sender_id"] for m in sent}

    async def every_page(limit: int, **filters: Any) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            page = await container.search.search(alice.id, "東京", limit=limit, cursor=cursor, **filters)
            found += [hit["message"]["id"] for hit in page["results"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    for limit in (2, 3, 50):
        assert await every_page(limit) == newest_first_ids, limit
    assert await every_page(2, conversation_id=theirs["id"]) == []
    assert await every_page(2, conversation_id=mine["id"]) == newest_first_ids
    by_bob = [id_ for id_ in newest_first_ids if senders[id_] == bob.id]
    assert by_bob and await every_page(2, sender_id=bob.id) == by_bob
    # A time range inside the walk and past it: the middle of the hits, by their created_at.
    times = {row.id: row.created_at for row in keys}
    middle = sorted(times.values())[len(times) // 3 : 2 * len(times) // 3 + 1]
    after, before = middle[0], middle[-1]
    in_range = [id_ for id_ in newest_first_ids if after <= times[id_] < before]
    after_iso, before_iso = ((t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat() for t in (after, before))
    assert in_range and await every_page(2, after=after_iso, before=before_iso) == in_range
    if container.db.is_sqlite:
        terms = parse_query("東京").terms
        async with container.db.read() as conn:
            selective = await search_sqlite.selective_keys(conn, terms)
        assert search_sqlite.reads_every_row(terms, selective)
        below = (utcnow(), "~")
        for statement in (
            search_sqlite.partial_statement(terms, alice.id, SearchFilters(), None, None, 21, selective, walk=3),
            search_sqlite.partial_statement(terms, alice.id, SearchFilters(), None, below, 21, selective, walk=3),
            search_sqlite.walk_end(None, SearchFilters(), 3),
            search_sqlite.walk_end(below, SearchFilters(), 3),
        ):
            sql = str(statement.compile(container.db.engine.sync_engine, compile_kwargs={"literal_binds": True}))
            async with container.db.read() as conn:
                lines = [str(row[-1]) for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            walked = [line for line in lines if line.startswith(("SCAN walked", "SEARCH walked"))]
            assert walked and all("ix_messages_search_recent" in line for line in walked), lines
            # Not the caller's every message through their conversations' index, then sorted.
            assert not any("uq_messages_conversation_seq" in line for line in lines), lines


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def test_migration_down_and_up_rebuilds_the_index(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await send(client, alice, group["id"], "written before the index existed")
    await send(client, alice, group["id"], "東京で会議")
    tombstone = await send(client, alice, group["id"], "deleted before it too")
    await client.delete(f"/api/v1/messages/{tombstone['id']}", headers=alice.headers)
    db = container.db
    try:
        async with db.transaction() as conn:  # the write lock: a session touch may be writing
            await conn.run_sync(_downgrade, "0001")
        async with db.read() as conn:
            if db.is_sqlite:
                leftovers = await conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE name LIKE 'message%search%' OR name LIKE 'messages_fts%'"
                )
            else:
                leftovers = await conn.exec_driver_sql(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'messages' AND column_name = 'search_vector' "
                    "UNION ALL SELECT cfgname FROM pg_ts_config WHERE cfgname = 'parley_search'"
                )
            assert list(leftovers) == []
        # Straight into the table: today's services expect today's schema (attachments).
        async with db.transaction() as conn:
            await conn.execute(
                insert(messages).values(
                    id=new_id(), conversation_id=group["id"], seq=1000, version_seq=1000,
                    sender_id=alice.id, kind="text", content="written while search was away",
                    mentions="[]", created_at=utcnow(),
                )
            )
            await conn.execute(
                insert(messages).values(
                    id=new_id(), conversation_id=group["id"], seq=1001, version_seq=1001,
                    sender_id=alice.id, kind="text", content="大阪で会議", mentions="[]", created_at=utcnow(),
                )
            )
    finally:
        await upgrade(db)
        await db.dispose()  # no pooled connection remembers the old table
    assert set(await hits(container, bob, "written")) == {
        "written before the index existed", "written while search was away",
    }
    assert await hits(container, bob, "deleted") == []
    # Two characters: the bigram indexes, rebuilt for the text written before and while away.
    assert set(await hits(container, bob, "会議")) == {"東京で会議", "大阪で会議"}
    await send(client, alice, group["id"], "written after")
    assert len(await hits(container, bob, "written")) == 3
    if db.is_sqlite:
        await check_sqlite_index(db)


async def test_random_input_never_breaks_the_sql(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    for text_ in ("deploy to prod 東京タワー", "café 🎉 naïve", "50% off: a_b 'quoted' (x)"):
        await send(client, alice, group["id"], text_)
    rng = random.Random(11)
    queries = random_queries(150, seed=11)
    dates = [None, "2024-01-01", "x", "2024-02-30", "9999-12-31T23:59:59-01:00", "0001-01-01", " 01:00"]
    for q in queries:
        params: dict[str, Any] = {
            "after": rng.choice(dates),
            "before": rng.choice(dates),
            "conversation_id": rng.choice([None, group["id"], new_id(), q[:26]]),
            "cursor": rng.choice([None, None, q, "eyJ0IjoxfQ"]),
        }
        try:
            await container.search.search(bob.id, q, **params)
        except ValidationFailed:
            pass
