"""SQLite: the hits of one search page, through the FTS5 tables of migrations 0002 and 0007
(``parley.services.search`` owns the request and the order it promises).

Each term is a set of doc ids (word index ∪ trigram index, of the text and of file names),
or a LIKE on the row when its substring is too short for trigrams. Whole-word hits are
ranked by bm25 in windows of ``rank_window``: FTS5 hands its matches out in doc id order,
which is time order, so the newest window is found by walking them newest first.
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
    and_,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.services.search_query import (
    LIKE_ESCAPE,
    Bound,
    Hit,
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


@dataclass(frozen=True, slots=True)
class Plan:
    """The FTS5 part of a search statement."""

    source: FromClause
    conditions: list[ColumnElement[bool]]
    tier: ColumnElement[Any] | None  # None: every hit has the same relevance
    score: ColumnElement[Any] | None
    # Every term as whole words (what windows count), as an FTS5 query. "": no term has
    # words, hits are not ranked (no windows).
    every_word: str = ""


async def page(
    conn: AsyncConnection,
    terms: Sequence[Term],
    user_id: str,
    filters: SearchFilters,
    position: Position | None,
    limit: int,
    rank_window: int,
) -> list[tuple[Hit, Window | None]]:
    """Up to ``limit + 1`` hits after ``position``, each with the window it was ranked in:
    the rest of the cursor's window, then as many older windows as the page needs."""
    if position is not None:
        window = position.window
    else:
        window = await _window(conn, plan(terms), user_id, filters, None, rank_window)
    found: list[tuple[Hit, Window | None]] = []
    while True:
        query = statement(plan(terms, window), user_id, filters, position, limit + 1 - len(found))
        found += [
            (Hit(row.id, row.created_at, row.tier, float(row.score)), window) for row in await conn.execute(query)
        ]
        if len(found) > limit or window is None or window.down_to is None:
            return found
        window = await _window(conn, plan(terms), user_id, filters, window.down_to, rank_window)
        position = None


def _doc_range(doc_id: ColumnElement[Any], window: Window | None) -> list[ColumnElement[bool]]:
    if window is None:
        return []
    conditions = []
    if window.below is not None:
        conditions.append(doc_id < window.below)
    if window.down_to is not None:
        conditions.append(doc_id >= window.down_to)
    return conditions


def plan(terms: Sequence[Term], window: Window | None = None) -> Plan:
    """Each term is a set of doc_ids (word index ∪ trigram index), or a LIKE on the row
    when its substring is too short for trigrams. Inside a window, each index is read for
    the window's doc ids only."""
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
        if found:
            alternatives.append(messages.c.id.in_(union(*found) if len(found) > 1 else found[0]))
        if term.substring and not term.trigram:
            alternatives.extend(messages.c.content.like(p, escape=LIKE_ESCAPE) for p in like_patterns(term))
        conditions.append(or_(*alternatives))
    every_word = fts5_all_words(tuple(terms))
    if not every_word:
        return Plan(source, conditions, None, None)
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
    return Plan(source, conditions, tier, score, every_word=every_word)


def statement(plan: Plan, user_id: str, filters: SearchFilters, position: Position | None, limit: int) -> Select[Any]:
    """(id, created_at, tier, score) of the best ``limit`` hits after ``position``: the
    plan's term conditions, the caller's conversations, visible text only, the filters."""
    conditions = [*plan.conditions, *_visible_to(user_id, filters)]
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


def _visible_to(user_id: str, filters: SearchFilters) -> list[ColumnElement[bool]]:
    """The caller's conversations, visible text only, the filters."""
    mine = select(members.c.conversation_id).where(members.c.user_id == user_id)
    conditions = [
        messages.c.conversation_id.in_(mine),
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


async def _window(
    conn: AsyncConnection,
    plan: Plan,
    user_id: str,
    filters: SearchFilters,
    below: Bound | None,
    rank_window: int,
) -> Window | None:
    """The next window below ``below`` (None: the newest): down to the ``rank_window``-th
    whole-word hit, newest first, or to the oldest when fewer are left. None (no window,
    everything ranked at once) for a first page with fewer whole-word hits than that."""
    keys = await _window_keys(conn, plan, user_id, filters, below, rank_window)
    down_to = keys[-1] if len(keys) == rank_window else None
    if below is None and down_to is None:
        return None
    return Window(below, down_to)


async def _window_keys(
    conn: AsyncConnection,
    plan: Plan,
    user_id: str,
    filters: SearchFilters,
    below: Bound | None,
    rank_window: int,
) -> list[Bound]:
    """Up to ``rank_window`` whole-word hits below ``below``, newest first, as doc ids."""
    if not plan.every_word:
        return []
    conditions = _visible_to(user_id, filters)
    if below is not None:
        conditions.append(_words.c.rowid < below)
    # FTS5 hands its matches out in doc id (time) order: the join stops at rank_window.
    rows = await conn.execute(
        select(_words.c.rowid)
        .select_from(
            _words.join(_docs, _docs.c.doc_id == _words.c.rowid).join(messages, messages.c.id == _docs.c.message_id)
        )
        .where(_words.c.content.match(plan.every_word), *conditions)
        .order_by(_words.c.rowid.desc())
        .limit(rank_window)
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
