"""Message search over every conversation the caller is in (DESIGN §2 "Full-text search").

Owns running a search: the SQL for each database and the result payload. What users may
type and what it means, the filters and the cursor: ``search_query``. Snippets and highlight
ranges: ``search_snippets``. The indexes and the triggers that keep them current: migration
``0002_search``.

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
from dataclasses import dataclass
from functools import reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Select,
    and_,
    any_,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat
from parley.errors import ValidationFailed
from parley.services.attachment_urls import AttachmentUrls
from parley.services.markup import plain_text
from parley.services.message_records import Message, load_messages
from parley.services.search_indexer import SearchIndexer
from parley.services.search_query import (
    LIKE_ESCAPE,
    Bound,
    Position,
    SearchFilters,
    Term,
    TermKind,
    Window,
    check_has,
    check_id,
    decode_cursor,
    encode_cursor,
    fts5_all_words,
    fts5_trigram,
    fts5_words,
    like_patterns,
    parse_query,
    parse_time,
    tsquery_prefix,
)
from parley.services.search_snippets import Snippet, make_snippet
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# How many whole-word hits are ranked together. A word found in most messages matches
# hundreds of thousands: ranking them all took up to 0.9 s at a million messages. Only the
# newest RANK_WINDOW (in the caller's conversations, after the filters) are ranked together;
# the pages after them rank the next RANK_WINDOW older ones, and so on. Fewer hits than
# that: one window, the exact ranking.
RANK_WINDOW = 500

# SQLite: the FTS5 tables and the doc_id ↔ message id map of migration 0002.
_words = table("messages_fts", column("rowid"), column("content"))
_trigrams = table("messages_fts_trigram", column("rowid"), column("content"))
_docs = table("message_search", column("doc_id"), column("message_id"))
# SQLite: the file-name FTS5 tables and their doc_id → message map (migration 0007).
_name_words = table("attachment_names_fts", column("rowid"), column("name"))
_name_trigrams = table("attachment_names_fts_trigram", column("rowid"), column("name"))
_name_docs = table("attachment_search", column("doc_id"), column("message_id"))
# PostgreSQL: the text search configuration and the stored vector of migration 0002.
_TS_CONFIG: ColumnElement[Any] = literal_column("'parley_search'")
_VECTOR: ColumnElement[Any] = literal_column("messages.search_vector")
# Both GIN indexes cover indexed rows only (migration 0017): every condition that should use
# one says so (for ``@@`` the planner infers it; ILIKE needs it spelled out).
_INDEXED: ColumnElement[bool] = _VECTOR.isnot(None)
_RANK_NORMALISATION = 1  # ts_rank_cd: divide by 1 + log(document length)
# The indexed expression of migration 0007 (file names: ".", "_" and "-" read as spaces).
# Literal constants, as in the index definition: bound parameters would not match it.
_NAME_VECTOR: ColumnElement[Any] = func.to_tsvector(
    _TS_CONFIG, func.translate(attachments.c.name, literal_column("'._-'"), literal_column("'   '"))
)


def has_attachment_condition() -> ColumnElement[bool]:
    """Messages that carry at least one live attachment (``has=attachment``): an indexed
    EXISTS on ``attachments.message_id`` (files of deleted messages are being removed)."""
    return (
        select(attachments.c.id)
        .where(attachments.c.message_id == messages.c.id, attachments.c.deleted_at.is_(None))
        .exists()
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """The dialect-specific part of a search statement."""

    source: FromClause
    conditions: list[ColumnElement[bool]]
    tier: ColumnElement[Any] | None  # None: every hit has the same relevance
    score: ColumnElement[Any] | None
    postgres: bool = False
    # Every term as whole words (what windows count): PostgreSQL's condition, SQLite's
    # FTS5 query. None / "": no term has words, hits are not ranked (no windows).
    whole: ColumnElement[bool] | None = None
    every_word: str = ""


class Search:
    def __init__(
        self, db: Database, urls: AttachmentUrls | None, indexer: SearchIndexer | None = None
    ) -> None:
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
            if not self._db.is_sqlite:
                # The best plan depends on the values (how common a word is, how many
                # conversations the caller is in); a cached generic plan ignores them and
                # can be a thousand times slower. Planning costs well under a millisecond.
                await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            page = await _page(conn, self._db.is_sqlite, query.terms, user_id, filters, position, limit)
            results = await _results(conn, user_id, query.terms, [row for row, _ in page[:limit]], self._urls)
        next_cursor = None
        if len(page) > limit:
            last, window = page[limit - 1]
            next_cursor = encode_cursor(
                fingerprint, Position(last.tier, last.score, last.created_at, last.id, window)
            )
        return {"results": results, "next_cursor": next_cursor, "has_more": next_cursor is not None}


# --- SQL


def _doc_range(doc_id: ColumnElement[Any], window: Window | None) -> list[ColumnElement[bool]]:
    if window is None:
        return []
    conditions = []
    if window.below is not None:
        conditions.append(doc_id < window.below)
    if window.down_to is not None:
        conditions.append(doc_id >= window.down_to)
    return conditions


def _sqlite_plan(terms: Sequence[Term], window: Window | None = None) -> _Plan:
    """FTS5: each term is a set of doc_ids (word index ∪ trigram index), or a LIKE on the
    row when its substring is too short for trigrams. Inside a window, each index is read
    for the window's doc ids only."""
    source: FromClause = messages.join(_docs, _docs.c.message_id == messages.c.id)
    conditions: list[ColumnElement[bool]] = _doc_range(_docs.c.doc_id, window)
    for term in terms:
        # Every message id the term finds through an index (its text's words or trigrams,
        # its files' names), as one IN on the primary key: an OR across tables would read
        # every message.
        found: list[Select[Any]] = []
        for words, trigrams, docs, text_column in (
            (_words, _trigrams, _docs, "content"),
            (_name_words, _name_trigrams, _name_docs, "name"),
        ):
            documents: list[Select[Any]] = []
            # Message doc ids are in time order; file-name doc ids are not.
            ranges = (
                (_doc_range(words.c.rowid, window), _doc_range(trigrams.c.rowid, window))
                if words is _words
                else ([], [])
            )
            if term.uses_words:
                documents.append(
                    select(words.c.rowid).where(
                        words.c[text_column].match(fts5_words(term)), *ranges[0]
                    )
                )
            if term.trigram:
                documents.append(
                    select(trigrams.c.rowid).where(
                        trigrams.c[text_column].match(fts5_trigram(term)), *ranges[1]
                    )
                )
            if documents:
                found.append(
                    select(docs.c.message_id).where(
                        docs.c.doc_id.in_(union(*documents) if len(documents) > 1 else documents[0])
                    )
                )
        alternatives: list[ColumnElement[bool]] = []
        if found:
            alternatives.append(messages.c.id.in_(union(*found) if len(found) > 1 else found[0]))
        if term.substring and not term.trigram:
            alternatives.extend(
                messages.c.content.like(p, escape=LIKE_ESCAPE) for p in like_patterns(term)
            )
        conditions.append(or_(*alternatives))
    every_word = fts5_all_words(tuple(terms))
    if not every_word:
        return _Plan(source, conditions, None, None)
    ranked = (
        select(
            _words.c.rowid.label("doc_id"),
            func.bm25(literal_column("messages_fts"), type_=Float).label("score"),
        )
        .where(_words.c.content.match(every_word), *_doc_range(_words.c.rowid, window))
        .subquery("ranked")
    )
    source = source.outerjoin(ranked, ranked.c.doc_id == _docs.c.doc_id)
    tier = case((ranked.c.doc_id.is_(None), 1), else_=0)
    score = func.coalesce(ranked.c.score, 0.0, type_=Float)
    return _Plan(source, conditions, tier, score, every_word=every_word)


def _postgres_plan(terms: Sequence[Term], window: Window | None = None) -> _Plan:
    """``search_vector @@ tsquery`` on its GIN index, ILIKE on the pg_trgm index; inside a
    window, the (created_at, id) range of ``ix_messages_search_recent``."""
    vector = _VECTOR
    queries: list[ColumnElement[Any]] = []
    in_window: list[ColumnElement[bool]] = []
    key = tuple_(messages.c.created_at, messages.c.id)
    if window is not None and window.below is not None:
        assert isinstance(window.below, tuple)
        in_window.append(key < tuple_(*window.below))
    if window is not None and window.down_to is not None:
        assert isinstance(window.down_to, tuple)
        in_window.append(key >= tuple_(*window.down_to))
    if in_window:
        # What ix_messages_search_recent covers: the window is read through it.
        in_window += [_INDEXED, messages.c.kind == "text", messages.c.deleted_at.is_(None)]
    conditions: list[ColumnElement[bool]] = [_INDEXED, *in_window]
    for term in terms:
        alternatives: list[ColumnElement[bool]] = []
        if term.uses_words:
            tsquery = (
                func.to_tsquery(_TS_CONFIG, tsquery_prefix(term))
                if term.kind is TermKind.PREFIX
                else func.phraseto_tsquery(_TS_CONFIG, term.text)
            )
            queries.append(tsquery)
            alternatives.append(vector.bool_op("@@")(tsquery))
        name_matches: list[ColumnElement[bool]] = []
        if term.uses_words:
            name_matches.append(_NAME_VECTOR.bool_op("@@")(queries[-1]))
        if term.substring:
            alternatives.extend(
                and_(_INDEXED, messages.c.content.ilike(p, escape=LIKE_ESCAPE))
                for p in like_patterns(term)
            )
            if term.trigram:
                name_matches.extend(
                    attachments.c.name.ilike(p, escape=LIKE_ESCAPE) for p in like_patterns(term)
                )
        if name_matches and not (term.substring and not term.trigram):
            # One IN over the ids found by either index: an OR with a subquery would stop
            # PostgreSQL from combining the text indexes (a BitmapOr) and read every message.
            # (Substrings too short for trigrams keep the plain OR and match text only.)
            by_text = select(messages.c.id).where(or_(*alternatives), *in_window)
            # Unsent uploads match too, with no message id: IN finds nothing for them.
            by_name = select(attachments.c.message_id).where(
                attachments.c.deleted_at.is_(None), or_(*name_matches)
            )
            conditions.append(messages.c.id.in_(union(by_text, by_name)))
            continue
        conditions.append(or_(*alternatives))
    if not queries:
        return _Plan(messages, conditions, None, None, postgres=True)
    every_word = reduce(lambda a, b: a.op("&&")(b), queries)
    whole = vector.bool_op("@@")(every_word)
    tier = case((whole, 0), else_=1)  # 0: every term as whole words, 1: partly substrings
    rank = func.ts_rank_cd(vector, every_word, _RANK_NORMALISATION, type_=Float)
    score = cast(case((whole, -rank), else_=literal_column("0")), Float)
    return _Plan(messages, conditions, tier, score, postgres=True, whole=whole)


def _statement(
    plan: _Plan, user_id: str, filters: SearchFilters, position: Position | None, limit: int
) -> Select[Any]:
    """(id, created_at, tier, score) of the best ``limit`` hits after ``position``: the
    plan's term conditions, the caller's conversations, visible text only, the filters."""
    conditions = [*plan.conditions, *_visible_to(plan, user_id, filters)]
    # (expression, descending, value at the cursor)
    keys: list[tuple[ColumnElement[Any], bool, Any]] = []
    if plan.tier is not None and plan.score is not None:
        keys += [
            (plan.tier, False, position.tier if position else None),
            (plan.score, False, position.score if position else None),
        ]
    keys += [
        (messages.c.created_at, True, position.created_at if position else None),
        (messages.c.id, True, position.message_id if position else None),
    ]
    if position is not None:
        conditions.append(_after(keys))
    tier = plan.tier if plan.tier is not None else literal(1)
    score = plan.score if plan.score is not None else literal(0.0, Float)
    return (
        select(messages.c.id, messages.c.created_at, tier.label("tier"), score.label("score"))
        .select_from(plan.source)
        .where(*conditions)
        .order_by(*(expr.desc() if descending else expr.asc() for expr, descending, _ in keys))
        .limit(limit)
    )


def _visible_to(plan: _Plan, user_id: str, filters: SearchFilters) -> list[ColumnElement[bool]]:
    """The caller's conversations, visible text only, the filters."""
    mine = select(members.c.conversation_id).where(members.c.user_id == user_id)
    if plan.postgres:
        # "= ANY(ARRAY(...))" is computed once, before the scan: when no index applies
        # (a LIKE for short CJK), PostgreSQL then reads only the caller's conversations
        # (by index) instead of every message.
        in_mine = messages.c.conversation_id == any_(func.array(mine.scalar_subquery()))
    else:
        in_mine = messages.c.conversation_id.in_(mine)
    conditions = [in_mine, messages.c.kind == "text", messages.c.deleted_at.is_(None)]
    if filters.conversation_id is not None:
        conditions.append(messages.c.conversation_id == filters.conversation_id)
    if filters.sender_id is not None:
        conditions.append(messages.c.sender_id == filters.sender_id)
    if filters.after is not None:
        conditions.append(messages.c.created_at >= filters.after)
    if filters.before is not None:
        conditions.append(messages.c.created_at < filters.before)
    if filters.has_attachment:
        conditions.append(has_attachment_condition())
    return conditions


async def _page(
    conn: AsyncConnection,
    sqlite: bool,
    terms: Sequence[Term],
    user_id: str,
    filters: SearchFilters,
    position: Position | None,
    limit: int,
) -> list[tuple[Any, Window | None]]:
    """Up to ``limit + 1`` hits after ``position``, each with the window it was ranked in:
    the rest of the cursor's window, then as many older windows as the page needs."""

    def plan_for(window: Window | None) -> _Plan:
        return _sqlite_plan(terms, window) if sqlite else _postgres_plan(terms, window)

    if position is not None:
        window = position.window
    else:
        window = await _window(conn, plan_for(None), user_id, filters, None)
    found: list[tuple[Any, Window | None]] = []
    while True:
        statement = _statement(plan_for(window), user_id, filters, position, limit + 1 - len(found))
        found += [(row, window) for row in await conn.execute(statement)]
        if len(found) > limit or window is None or window.down_to is None:
            return found
        window = await _window(conn, plan_for(None), user_id, filters, window.down_to)
        position = None


async def _window(
    conn: AsyncConnection, plan: _Plan, user_id: str, filters: SearchFilters, below: Bound | None
) -> Window | None:
    """The next window below ``below`` (None: the newest): down to the RANK_WINDOW-th
    whole-word hit, newest first, or to the oldest when fewer are left. None (no window,
    everything ranked at once) for a first page with fewer whole-word hits than that."""
    keys = await _window_keys(conn, plan, user_id, filters, below)
    down_to = keys[-1] if len(keys) == RANK_WINDOW else None
    if below is None and down_to is None:
        return None
    return Window(below, down_to)


async def _window_keys(
    conn: AsyncConnection, plan: _Plan, user_id: str, filters: SearchFilters, below: Bound | None
) -> list[Bound]:
    """Up to RANK_WINDOW whole-word hits below ``below``, newest first, as bounds: walked in
    time order through the index, so a common word stops after a few thousand rows."""
    conditions = _visible_to(plan, user_id, filters)
    if plan.postgres:
        if plan.whole is None:
            return []
        key = tuple_(messages.c.created_at, messages.c.id)
        if below is not None:
            assert isinstance(below, tuple)
            conditions.append(key < tuple_(*below))
        rows = await conn.execute(
            select(messages.c.created_at, messages.c.id)
            .where(_INDEXED, plan.whole, *conditions)
            .order_by(messages.c.created_at.desc(), messages.c.id.desc())
            .limit(RANK_WINDOW)
        )
        return [(row.created_at, row.id) for row in rows]
    if not plan.every_word:
        return []
    if below is not None:
        conditions.append(_words.c.rowid < below)
    # FTS5 hands its matches out in doc id (time) order: the join stops at RANK_WINDOW.
    rows = await conn.execute(
        select(_words.c.rowid)
        .select_from(
            _words.join(_docs, _docs.c.doc_id == _words.c.rowid).join(
                messages, messages.c.id == _docs.c.message_id
            )
        )
        .where(_words.c.content.match(plan.every_word), *conditions)
        .order_by(_words.c.rowid.desc())
        .limit(RANK_WINDOW)
    )
    return [int(row.rowid) for row in rows]


def _after(keys: list[tuple[ColumnElement[Any], bool, Any]]) -> ColumnElement[bool]:
    """Rows strictly after the cursor in the sort order: a lexicographic comparison
    spelled out, since row-value comparison cannot mix ascending and descending keys."""
    clause: ColumnElement[bool] | None = None
    for expr, descending, value in reversed(keys):
        beyond = expr < value if descending else expr > value
        clause = beyond if clause is None else or_(beyond, and_(expr == value, clause))
    assert clause is not None
    return clause


# --- results


async def _results(
    conn: AsyncConnection,
    user_id: str,
    terms: Sequence[Term],
    page: Sequence[Any],
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


async def _conversations(
    conn: AsyncConnection, user_id: str, conversation_ids: set[str]
) -> dict[str, dict[str, Any]]:
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
