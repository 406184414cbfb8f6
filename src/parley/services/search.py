"""Message search over every conversation the caller is in (DESIGN §2 "Full-text search").

Owns running a search and the result payload. What users may type and what it means, the
filters and the cursor: ``search_query``. Finding a page of hits: ``search_sqlite`` (FTS5)
and ``search_postgres`` (tsvector and pg_trgm). Snippets and highlight ranges:
``search_snippets``. The indexes and the triggers that keep them current: migration
``0002_search`` and those after it.

Guarantees:
- A message matches a term by its text or by the name of one of its files (migration
  ``0007_search_filenames``); the snippet shows the text, without Markdown, or the name.
- Results come only from conversations the caller is a member of now — never tombstones,
  never system messages. A filter naming a conversation the caller is not in finds nothing;
  it is not an error, so it says nothing about whether that conversation exists.
- A search sees every message acknowledged before it began: new text is indexed in
  batches after the commit (``search_indexer``, migration 0017), and a search first indexes
  whatever still waits. An edit or delete forgets the old text in its own transaction:
  once acknowledged, the message is no longer found by its old text.
- Ranking: relevance, then recency. Messages matching every term as whole words come first,
  ordered by the database's own relevance (bm25 on SQLite, ts_rank_cd on PostgreSQL); then
  partial matches (substrings, short CJK) newest first. Ties: newest first.
- Pages: an opaque keyset cursor, tied to the query and filters that made it. No duplicates
  and no gaps while the matching messages stay as they are. (On SQLite, bm25 depends on
  whole-index statistics, so heavy writes between two pages can move an item across the
  page boundary.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat
from parley.errors import ValidationFailed
from parley.services import search_postgres, search_sqlite
from parley.services.attachment_urls import AttachmentUrls
from parley.services.markup import plain_text
from parley.services.message_records import Message, load_messages
from parley.services.search_indexer import SearchIndexer
from parley.services.search_paging import HitSource, fill_page
from parley.services.search_query import (
    Hit,
    Position,
    SearchFilters,
    Term,
    check_has,
    check_id,
    decode_cursor,
    encode_cursor,
    parse_query,
    parse_time,
)
from parley.services.search_snippets import Snippet, make_snippet
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# How many whole-word hits are ranked together. A word found in most messages matches
# hundreds of thousands: ranking them all took up to 0.9 s at a million messages. Only the
# newest RANK_WINDOW (in the caller's conversations, after the filters) are ranked together;
# the pages after them rank the next RANK_WINDOW older ones, and so on. Fewer hits than
# that: one window, the exact ranking.
RANK_WINDOW = 500
# For this transaction only. plan_cache_mode: the best plan depends on the values (how
# common a word is, how many conversations the caller is in); a cached generic plan ignores
# them and can be a thousand times slower, and planning costs well under a millisecond.
# jit: compiling pays off for queries of seconds; it added 30-55 ms to search statements
# of a few (EXPLAIN ANALYZE at a million messages).
_POSTGRES_SETTINGS = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)"
)


class Search:
    def __init__(self, db: Database, urls: AttachmentUrls | None, indexer: SearchIndexer | None = None) -> None:
        self._db = db
        self._urls = urls  # signs the hits' attachment URLs
        # Indexes what still waits before each search, so none misses an acknowledged
        # message (None: the caller keeps the index current itself, as the benchmarks do).
        self._indexer = indexer

    async def search(
        self,
        user_id: str,
        q: str,
        *,
        conversation_id: str | None = None,
        sender_id: str | None = None,
        after: str | None = None,
        before: str | None = None,
        has: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """``{"results": [...], "next_cursor": str | None, "has_more": bool}``.

        Every bad input is a ``ValidationFailed`` naming its field."""
        query = parse_query(q)
        filters = SearchFilters(
            conversation_id=check_id("conversation_id", conversation_id),
            sender_id=check_id("sender_id", sender_id),
            after=parse_time("after", after),
            before=parse_time("before", before),
            has_attachment=check_has(has),
        )
        if filters.after and filters.before and filters.after >= filters.before:
            raise ValidationFailed.field("before", "must be later than after")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_LIMIT}")
        fingerprint = filters.fingerprint(query)
        position = decode_cursor(cursor, fingerprint) if cursor else None
        if not query.terms:  # only punctuation: nothing can match it
            return {"results": [], "next_cursor": None, "has_more": False}
        if self._indexer is not None:
            await self._indexer.catch_up()
        async with self._db.read_replica() as conn:
            source: HitSource | None
            if self._db.is_sqlite:
                source = await search_sqlite.hit_source(conn, query.terms, user_id, filters, RANK_WINDOW)
            else:
                await conn.execute(_POSTGRES_SETTINGS)
                source = await search_postgres.hit_source(conn, query.terms, user_id, filters, RANK_WINDOW)
            page = [] if source is None else await fill_page(source, position, limit)
            results = await _results(conn, user_id, query.terms, [hit for hit, _ in page[:limit]], self._urls)
        next_cursor = None
        if len(page) > limit:
            last, window = page[limit - 1]
            next_cursor = encode_cursor(fingerprint, Position(last.tier, last.score, last.created_at, last.id, window))
        return {"results": results, "next_cursor": next_cursor, "has_more": next_cursor is not None}


# --- results


async def _results(
    conn: AsyncConnection,
    user_id: str,
    terms: Sequence[Term],
    page: Sequence[Hit],
    urls: AttachmentUrls | None,
) -> list[dict[str, Any]]:
    if not page:
        return []
    ids = [row.id for row in page]
    read = await load_messages(conn, select(messages).where(messages.c.id.in_(ids)), urls=urls)
    loaded = {m.id: m for m in read}
    # PostgreSQL reads each statement at its own snapshot (read committed): a message
    # deleted in between is left out rather than shown as an empty tombstone.
    found = [loaded[i] for i in ids if i in loaded and not loaded[i].deleted]
    senders = await _senders(conn, {m.sender_id for m in found if m.sender_id})
    places = await _conversations(conn, user_id, {m.conversation_id for m in found})
    tiers = {row.id: row.tier for row in page}
    return [_result(m, places[m.conversation_id], senders, tiers[m.id], terms) for m in found]


def _result(
    message: Message,
    conversation: dict[str, Any],
    senders: dict[str, dict[str, Any]],
    tier: int,
    terms: Sequence[Term],
) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "seq": message.seq,
        "created_at": isoformat(message.created_at),
        "conversation": conversation,
        "sender": senders.get(message.sender_id) if message.sender_id else None,
        # "words": every term matched as whole words; "partial": some only inside words.
        "match": "words" if tier == 0 else "partial",
        **_snippet(message, terms).to_public(),
        "message": message.to_public(),
    }


def _snippet(message: Message, terms: Sequence[Term]) -> Snippet:
    """The text as read (no Markdown) around the first match; when only a file's name
    matched, that name."""
    snippet = make_snippet(plain_text(message.content), terms)
    if snippet.highlights or not message.attachments:
        return snippet
    for attachment in message.attachments:
        named = make_snippet(str(attachment.get("name", "")), terms)
        if named.highlights:
            return named
    return snippet


async def _senders(conn: AsyncConnection, user_ids: set[str]) -> dict[str, dict[str, Any]]:
    if not user_ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.username, users.c.display_name, users.c.profile_version).where(
            users.c.id.in_(user_ids)
        )
    )
    return {
        r.id: {
            "id": r.id,
            "username": r.username,
            "display_name": r.display_name,
            "profile_version": r.profile_version,
        }
        for r in rows
    }


async def _conversations(conn: AsyncConnection, user_id: str, conversation_ids: set[str]) -> dict[str, dict[str, Any]]:
    """id, type and name; a direct conversation is named after the other person."""
    places = {
        r.id: {"id": r.id, "type": r.type, "name": r.name}
        for r in await conn.execute(
            select(conversations.c.id, conversations.c.type, conversations.c.name).where(
                conversations.c.id.in_(conversation_ids)
            )
        )
    }
    direct = [cid for cid, place in places.items() if place["type"] == "direct"]
    if direct:
        for r in await conn.execute(
            select(members.c.conversation_id, users.c.display_name)
            .join(users, users.c.id == members.c.user_id)
            .where(members.c.conversation_id.in_(direct), members.c.user_id != user_id)
        ):
            places[r.conversation_id]["name"] = r.display_name
    return places
