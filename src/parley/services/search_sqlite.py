"""SQLite: the hits of a search, through the FTS5 tables of migrations 0002, 0007 and 0021 (the
order and the page loop: ``search_paging``).

Whole-word hits are ranked by bm25. FTS5 hands its matches out in doc id order, which is time
order, so a window's whole-word hits are found by walking the word index newest first, with
their scores. Partial hits (tier 1): each term is a set of doc ids (word index ∪ trigram
index, of the text and of file names); a substring too short for trigrams is found through
the bigram index (two characters) or by a LIKE on the row (one); the window's whole-word
hits are left out.

A term that only LIKE on the row can match (one character, or two whose bigram keys too many
messages hold) would check every message of the caller's. Outside a ranking window, the
newest ``WALK_ENTRIES`` messages of the server are walked first instead
(``ix_messages_search_recent``, migration 0022) and the caller's among them checked: a common
term fills its page there; a rarer one then checks the rest of the history as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Select,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    tuple_,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.services.search_bigrams import bigram_keys, fts5_bigram_keys
from parley.services.search_paging import HitSource
from parley.services.search_query import (
    LIKE_ESCAPE,
    Bound,
    Hit,
    Key,
    Position,
    SearchFilters,
    Term,
    Window,
    fts5_all_words,
    fts5_trigram,
    fts5_words,
    like_patterns,
)
from parley.services.search_scope import has_attachment_condition
from parley.store.tables.conversations import members
from parley.store.tables.messages import messages

# The FTS5 tables and the doc_id ↔ message id map of migration 0002.
_words = table("messages_fts", column("rowid"), column("content"))
_trigrams = table("messages_fts_trigram", column("rowid"), column("content"))
_docs = table("message_search", column("doc_id"), column("message_id"))
# The file-name FTS5 tables and their doc_id → message map (migration 0007).
_name_words = table("attachment_names_fts", column("rowid"), column("name"))
_name_trigrams = table("attachment_names_fts_trigram", column("rowid"), column("name"))
_name_docs = table("attachment_search", column("doc_id"), column("message_id"))
# The keys of short substrings by doc_id (migration 0021).
_bigrams = table("messages_fts_bigram", column("rowid"), column("bigrams"))


@dataclass(frozen=True, slots=True)
class Plan:
    """The FTS5 part of a search statement: what to read, and each term's condition."""

    source: FromClause
    conditions: list[ColumnElement[bool]]


# A short substring whose keys more documents than this hold is matched by LIKE on the
# caller's messages instead of through the bigram index: checking each document the index
# found costs about what LIKE costs per message of the caller's (~2.5 µs each at 1M
# messages), and past this the index path would take longer than a typical caller's whole
# history (a common pair like "です" in a CJK-heavy server: 420 ms through the index against
# 250 ms by LIKE, docs/benchmarks.md round nine). Counting stops here, so asking is cheap.
BIGRAM_DOCUMENTS_MAX = 20_000
# Index entries a walk reads: the newest visible messages of every conversation, of which
# the caller's are checked. Counted in entries, not in the caller's messages, so that a
# caller in few conversations of a big server reads no more of the index than any other
# (a caller in a tenth of the conversations finds ~2,000 of theirs in them). A term the walk
# is for is common (a short substring held by more than BIGRAM_DOCUMENTS_MAX messages: one
# in fifty at a million) or one character. A common two-character word at a million
# messages: 21 ms for the whole search, against 240-265 ms by LIKE on every message of the
# caller's (docs/benchmarks.md, round ten).
WALK_ENTRIES = 20_000

# The walk's index entries, told apart from the rows checked (``messages``).
_walked = messages.alias("walked")


async def hit_source(
    conn: AsyncConnection, terms: Sequence[Term], user_id: str, filters: SearchFilters, rank_window: int
) -> HitSource:
    """The hits of one search."""
    terms = tuple(terms)
    selective = await selective_keys(conn, terms)
    return _SqliteHits(conn, terms, user_id, filters, rank_window, selective, reads_every_row(terms, selective))


async def selective_keys(conn: AsyncConnection, terms: Sequence[Term]) -> frozenset[frozenset[str]]:
    """The bigram keys of the terms' short substrings that few enough documents hold for the
    index to find them (``BIGRAM_DOCUMENTS_MAX``)."""
    selective: set[frozenset[str]] = set()
    for keys in {keys for term in terms for keys in _short_substring_keys(term)}:
        holding = select(_bigrams.c.rowid).where(_bigrams_match(keys)).limit(BIGRAM_DOCUMENTS_MAX + 1)
        count = (await conn.execute(select(func.count()).select_from(holding.subquery()))).scalar_one()
        if count <= BIGRAM_DOCUMENTS_MAX:
            selective.add(keys)
    return frozenset(selective)


def _short_substring_keys(term: Term) -> list[frozenset[str]]:
    """The keys of each stored form of a substring too short for trigrams (none: a single
    character, matched by LIKE alone)."""
    if not term.short_substring:
        return []
    return [keys for variant in term.variants if (keys := bigram_keys(variant))]


def _bigrams_match(keys: frozenset[str]) -> ColumnElement[bool]:
    # The table, not its column: FTS5 has no column filters with detail=none.
    return literal_column(_bigrams.name).match(fts5_bigram_keys(keys))


@dataclass(frozen=True, slots=True)
class _SqliteHits:
    """The ``HitSource`` of one search."""

    conn: AsyncConnection
    terms: tuple[Term, ...]
    user_id: str
    filters: SearchFilters
    rank_window: int
    selective: frozenset[frozenset[str]]
    walks: bool  # a term only LIKE on the row matches: outside a window, walk first

    async def next_window(self, below: Bound | None) -> tuple[Window | None, list[Hit]]:
        found = await self._whole(Window(below, None), self.rank_window)
        down_to = found[-1][0] if len(found) == self.rank_window else None
        hits = [hit for _, hit in found]
        if below is None and down_to is None:
            return None, hits
        return Window(below, down_to), hits

    async def ranked_in(self, window: Window | None) -> list[Hit]:
        return [hit for _, hit in await self._whole(window, None)]

    async def partial(self, window: Window | None, after: Position | None, need: int) -> list[Hit]:
        below = None if after is None else (after.created_at, after.message_id)
        if window is None and self.walks:
            return await self._walk(below, need)
        return await self._partial(window, below, need, walk=None)

    async def _walk(self, below: Key | None, need: int) -> list[Hit]:
        """The newest ``need`` partial hits below ``below``: among the caller's messages in
        the next WALK_ENTRIES of the index, then (if they did not hold enough) in the rest."""
        hits = await self._partial(None, below, need, walk=WALK_ENTRIES)
        if len(hits) >= need:
            return hits
        end = (await self.conn.execute(walk_end(below, self.filters, WALK_ENTRIES))).first()
        if end is None:
            return hits  # the walk read every message the caller may find
        return hits + await self._partial(None, (end.created_at, end.id), need - len(hits), walk=None)

    async def _partial(self, window: Window | None, below: Key | None, need: int, walk: int | None) -> list[Hit]:
        statement = partial_statement(
            self.terms, self.user_id, self.filters, window, below, need, self.selective, walk=walk
        )
        return [Hit(row.id, row.created_at, 1, 0.0) for row in await self.conn.execute(statement)]

    async def _whole(self, window: Window | None, limit: int | None) -> list[tuple[int, Hit]]:
        """(doc id, hit) of the whole-word hits in ``window``, newest first, with their bm25
        scores: FTS5 hands its matches out in doc id (time) order, so ``limit`` stops it."""
        every_word = fts5_all_words(self.terms)
        if not every_word:
            return []
        score = func.bm25(literal_column("messages_fts"), type_=Float)
        rows = await self.conn.execute(
            select(_words.c.rowid, messages.c.id, messages.c.created_at, score.label("score"))
            .select_from(
                _words.join(_docs, _docs.c.doc_id == _words.c.rowid).join(messages, messages.c.id == _docs.c.message_id)
            )
            .where(
                _words.c.content.match(every_word),
                *_doc_range(_words.c.rowid, window),
                *_visible_to(self.user_id, self.filters),
            )
            .order_by(_words.c.rowid.desc())
            .limit(limit)
        )
        return [(int(row.rowid), Hit(row.id, row.created_at, 0, float(row.score))) for row in rows]


def partial_statement(
    terms: Sequence[Term],
    user_id: str,
    filters: SearchFilters,
    window: Window | None,
    below: Key | None,
    limit: int,
    selective: frozenset[frozenset[str]],
    *,
    walk: int | None = None,
) -> Select[Any]:
    """(id, created_at) of the newest ``limit`` partial hits in ``window`` below the key
    ``below``: every term's condition, not every term as whole words, the caller's
    conversations, visible text only, the filters. Short substrings with ``selective`` keys
    go through the bigram index. ``walk``: only among the newest ``walk`` index entries below
    ``below`` (outside a window; see ``_walk``)."""
    found = plan(terms, window, selective)
    conditions = [*found.conditions, *_visible_to(user_id, filters, walked=walk is not None)]
    if walk is not None:
        conditions.append(messages.c.id.in_(_walk(user_id, filters, below, walk)))
    elif below is not None:
        conditions.append(_before(messages, below))
    every_word = fts5_all_words(tuple(terms))
    if every_word:
        whole = select(_words.c.rowid).where(_words.c.content.match(every_word), *_doc_range(_words.c.rowid, window))
        conditions.append(_docs.c.doc_id.notin_(whole))
    return (
        select(messages.c.id, messages.c.created_at)
        .select_from(found.source)
        .where(*conditions)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(limit)
    )


def reads_every_row(terms: Sequence[Term], selective: frozenset[frozenset[str]]) -> bool:
    """Whether some term is matched by LIKE alone (see ``plan``): then that term narrows
    nothing down, and unless another term is rare, the statement checks every message of
    the caller's."""
    return any(
        _by_like_alone(variant, selective) for term in terms if term.short_substring for variant in term.variants
    )


def _by_like_alone(variant: str, selective: frozenset[frozenset[str]]) -> bool:
    """A short substring's stored form that the bigram index does not find: one character,
    or keys too common for the index to pay."""
    return bigram_keys(variant) not in selective


def walk_end(below: Key | None, filters: SearchFilters, walk: int) -> Select[Any]:
    """(created_at, id) of the last of the newest ``walk`` index entries below ``below``; no
    row if there are fewer."""
    return _entries(below, filters).with_only_columns(_walked.c.created_at, _walked.c.id).offset(walk - 1).limit(1)


def _walk(user_id: str, filters: SearchFilters, below: Key | None, walk: int) -> Select[Any]:
    """The ids of the caller's messages among the newest ``walk`` index entries below
    ``below``. The entries are read alone (the index covers them: no row is read), then the
    caller's conversations kept: a LIMIT on the caller's messages instead would read the
    whole index for a caller in few conversations."""
    entries = _entries(below, filters).limit(walk).subquery("entries")
    return select(entries.c.id).where(entries.c.conversation_id.in_(_conversations_of(user_id)))


def _entries(below: Key | None, filters: SearchFilters) -> Select[Any]:
    """(id, conversation_id) of the visible messages below ``below`` and in the filters'
    time range, newest first: a walk of ``ix_messages_search_recent`` (migration 0022). The
    kind and deletion terms are literal, as a partial index needs to be used (a bound
    parameter does not imply ``kind = 'text'``)."""
    w = _walked
    conditions = [w.c.kind == literal_column("'text'"), w.c.deleted_at.is_(None)]
    if filters.after is not None:
        conditions.append(w.c.created_at >= filters.after)
    if filters.before is not None:
        conditions.append(w.c.created_at < filters.before)
    if below is not None:
        conditions.append(_before(w, below))
    return select(w.c.id, w.c.conversation_id).where(*conditions).order_by(w.c.created_at.desc(), w.c.id.desc())


def _before(rows: FromClause, below: Key) -> ColumnElement[bool]:
    """Rows older than the key ``below`` in (created_at, id) order. Bound with the columns'
    own types (UTCDateTime stores naive UTC on SQLite)."""
    created_at, message_id = rows.c.created_at, rows.c.id
    return tuple_(created_at, message_id) < tuple_(
        literal(below[0], created_at.type), literal(below[1], message_id.type)
    )


def _doc_range(doc_id: ColumnElement[Any], window: Window | None) -> list[ColumnElement[bool]]:
    if window is None:
        return []
    conditions = []
    if window.below is not None:
        conditions.append(doc_id < window.below)
    if window.down_to is not None:
        conditions.append(doc_id >= window.down_to)
    return conditions


def plan(terms: Sequence[Term], window: Window | None, selective: frozenset[frozenset[str]]) -> Plan:
    """Each term is a set of doc_ids (word index ∪ trigram index ∪ bigram index for the
    ``selective`` keys of short substrings), or a LIKE on the row for other short substrings.
    Inside a window, each index is read for the window's doc ids only."""
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
                documents.append(select(words.c.rowid).where(words.c[text_column].match(fts5_words(term)), *ranges[0]))
            if term.trigram:
                documents.append(
                    select(trigrams.c.rowid).where(trigrams.c[text_column].match(fts5_trigram(term)), *ranges[1])
                )
            if documents:
                found.append(
                    select(docs.c.message_id).where(
                        docs.c.doc_id.in_(union(*documents) if len(documents) > 1 else documents[0])
                    )
                )
        alternatives: list[ColumnElement[bool]] = []
        if term.short_substring:
            for variant, pattern in zip(term.variants, like_patterns(term), strict=True):
                if _by_like_alone(variant, selective):
                    alternatives.append(messages.c.content.like(pattern, escape=LIKE_ESCAPE))
                else:
                    found.append(_short_substring(bigram_keys(variant), pattern, window))
        if found:
            alternatives.append(messages.c.id.in_(union(*found) if len(found) > 1 else found[0]))
        conditions.append(or_(*alternatives))
    return Plan(source, conditions)


def _short_substring(keys: frozenset[str], pattern: str, window: Window | None) -> Select[Any]:
    """The ids of the messages holding a short substring: the documents with every key of
    it (the bigram index of migration 0021), each checked by LIKE, since a document may hold
    the keys apart ("東x京" and "x東京" for "東京")."""
    text_row = messages.alias("short_substring_text")
    documents = select(_bigrams.c.rowid).where(_bigrams_match(keys), *_doc_range(_bigrams.c.rowid, window))
    return (
        select(_docs.c.message_id)
        .select_from(_docs.join(text_row, text_row.c.id == _docs.c.message_id))
        .where(_docs.c.doc_id.in_(documents), text_row.c.content.like(pattern, escape=LIKE_ESCAPE))
    )


def _visible_to(user_id: str, filters: SearchFilters, *, walked: bool = False) -> list[ColumnElement[bool]]:
    """The caller's conversations, visible text only, the filters. ``walked``: the rows are
    the walk's, which kept only the caller's visible messages already."""
    conditions = []
    if not walked:
        conditions += [
            messages.c.conversation_id.in_(_conversations_of(user_id)),
            messages.c.kind == "text",
            messages.c.deleted_at.is_(None),
        ]
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


def _conversations_of(user_id: str) -> Select[Any]:
    return select(members.c.conversation_id).where(members.c.user_id == user_id)
