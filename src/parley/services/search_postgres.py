"""PostgreSQL: the hits of a search (the order and the page loop: ``search_paging``).

Each set of hits — a window's whole-word hits with their ts_rank_cd scores, or a window's
partial hits — is read newest first in one of two shapes, chosen per query by how often its
condition matched the caller's newest messages (``_newest``):

- walk: the caller's visible messages newest first, each checked on its row. The walk reads
  ``ix_messages_search_recent`` by an index-only scan: the conversation and sender ids it
  carries (migration 0019) keep other conversations' messages off the heap. Its cost follows
  the candidates read per hit found: a common word stops after a few thousand.
- index: every match through the GIN indexes (words, trigrams, bigrams, file names), then
  the newest. Its cost follows the matches: a rare word costs a few hundred rows, where a
  walk would read the whole history before giving up.

A walk of ``WALK_PROBE`` candidates comes first: it settles common terms at once, and the
rate it found hits at decides the rest — walk on if that should find them within
``WALK_LIMIT`` candidates, else the indexes. (A term without any index, a one-character
substring, is walked to the end.)

The caller's conversations are read first and passed as an array, so the planner knows how
many messages they hold (``ARRAY(SELECT ...)`` counts as ten values to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Float,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import NamedFromClause

from parley.services.search_paging import HitSource
from parley.services.search_postgres_terms import TermConditions
from parley.services.search_query import Bound, Hit, Key, Position, SearchFilters, Term, Window
from parley.services.search_scope import has_attachment_condition
from parley.store.tables.conversations import members
from parley.store.tables.messages import messages

# Candidates the first walk reads (about ten index entries each when the caller is in a
# tenth of the conversations). 2,000 finds a page of a word in one message of a hundred and
# a ranking window of a word in one of four, for ~5 ms at a million messages.
WALK_PROBE = 2_000
# The most candidates a walk reads before the indexes take over: ~50 ms at a million
# messages, about what the indexes cost for a term in one message of a hundred.
WALK_LIMIT = 20_000

# The walk's index entries, told apart from the rows checked (``messages``).
_candidate: NamedFromClause = messages.alias("candidate")


@dataclass(frozen=True, slots=True)
class _Scope:
    """Which messages a search may return: visible text in the caller's conversations
    (``mine``), after the filters."""

    mine: BindParameter[list[str]]
    filters: SearchFilters

    @classmethod
    def of(cls, mine: list[str], filters: SearchFilters) -> _Scope:
        # One parameter, however many times a statement names it.
        array: Any = ARRAY(String)  # a list of ids (the stubs expect the element type)
        return cls(bindparam("mine", mine, type_=array), filters)

    def listed(self, table: NamedFromClause) -> list[ColumnElement[bool]]:
        """What ``ix_messages_search_recent`` holds and reads without the heap: indexed
        visible text, the caller's conversations, the sender and time filters."""
        columns = table.c
        conditions = [
            literal_column(f"{table.name}.search_vector").isnot(None),
            columns.kind == "text",
            columns.deleted_at.is_(None),
            columns.conversation_id == any_(self.mine),
        ]
        if self.filters.sender_id is not None:
            conditions.append(columns.sender_id == self.filters.sender_id)
        if self.filters.after is not None:
            conditions.append(columns.created_at >= self.filters.after)
        if self.filters.before is not None:
            conditions.append(columns.created_at < self.filters.before)
        return conditions

    def on_row(self) -> list[ColumnElement[bool]]:
        """The filters only the message row answers."""
        conditions: list[ColumnElement[bool]] = []
        if self.filters.has_attachment:
            conditions.append(has_attachment_condition())
        return conditions


@dataclass(frozen=True, slots=True)
class _Find:
    """One set of hits: whole-word hits (tier 0, with their scores) or the partial ones."""

    terms: TermConditions
    tier: int
    below: Key | None = None  # exclusive
    down_to: Key | None = None  # inclusive

    def in_range(self, table: NamedFromClause, below: Key | None) -> list[ColumnElement[bool]]:
        key = tuple_(table.c.created_at, table.c.id)
        conditions = []
        if below is not None:
            conditions.append(key < tuple_(*below))
        if self.down_to is not None:
            conditions.append(key >= tuple_(*self.down_to))
        return conditions

    def columns(self) -> list[ColumnElement[Any]]:
        if self.tier == 0:
            return [self.terms.score().label("score")]
        return [literal(0.0, Float).label("score")]

    @property
    def indexable(self) -> bool:
        return self.tier == 0 or self.terms.indexable


async def hit_source(
    conn: AsyncConnection, terms: Sequence[Term], user_id: str, filters: SearchFilters, rank_window: int
) -> HitSource | None:
    """The hits of one search (None: the caller is in no conversation the filters allow)."""
    mine = await _conversations_of(conn, user_id, filters.conversation_id)
    if not mine:
        return None
    return _PostgresHits(conn, _Scope.of(mine, filters), TermConditions.of(terms), rank_window)


async def _conversations_of(conn: AsyncConnection, user_id: str, only: str | None) -> list[str]:
    """The caller's conversations now (``only``: that one, if the caller is in it)."""
    query = select(members.c.conversation_id).where(members.c.user_id == user_id)
    if only is not None:
        query = query.where(members.c.conversation_id == only)
    return [row.conversation_id for row in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class _PostgresHits:
    """The ``HitSource`` of one search."""

    conn: AsyncConnection
    scope: _Scope
    conditions: TermConditions
    rank_window: int

    async def next_window(self, below: Bound | None) -> tuple[Window | None, list[Hit]]:
        if not self.conditions.ranked:
            return None, []
        find = _Find(self.conditions, tier=0, below=_key(below))
        hits = await _newest(self.conn, self.scope, find, self.rank_window)
        down_to = (hits[-1].created_at, hits[-1].id) if len(hits) == self.rank_window else None
        if below is None and down_to is None:
            return None, hits
        return Window(below, down_to), hits

    async def ranked_in(self, window: Window | None) -> list[Hit]:
        if not self.conditions.ranked:
            return []
        below, down_to = _bounds(window)
        hits: list[Hit] = []
        while True:
            find = _Find(self.conditions, tier=0, below=below, down_to=down_to)
            more = await _newest(self.conn, self.scope, find, self.rank_window)
            hits += more
            if len(more) < self.rank_window:
                return hits
            below = (more[-1].created_at, more[-1].id)
            if below == down_to:
                return hits

    async def partial(self, window: Window | None, after: Position | None, need: int) -> list[Hit]:
        below, down_to = _bounds(window)
        if after is not None:
            below = (after.created_at, after.message_id)
        find = _Find(self.conditions, tier=1, below=below, down_to=down_to)
        return await _newest(self.conn, self.scope, find, need)


@dataclass(frozen=True, slots=True)
class _Walked:
    """A walk's hits, and where it stopped when it read all its candidates: how many there
    were (fewer than its budget: none are left) and the last one's key."""

    hits: list[Hit]
    candidates: int | None = None  # None: it stopped at the hits needed
    last: Key | None = None


async def _newest(conn: AsyncConnection, scope: _Scope, find: _Find, need: int) -> list[Hit]:
    """Up to ``need`` hits of ``find``, newest first: a walk of WALK_PROBE candidates, then
    by the rate it found hits at, a longer walk or the indexes for the rest."""
    hits: list[Hit] = []
    below, walked, budget = find.below, 0, WALK_PROBE
    while True:
        walk = await _walk(conn, scope, find, below, budget, need - len(hits))
        hits += walk.hits
        if len(hits) >= need or walk.candidates is None or walk.last is None or walk.candidates < budget:
            return hits  # enough hits, or every candidate left seen
        below, walked = walk.last, walked + walk.candidates
        left = need - len(hits)
        # Candidates still to read at the rate seen so far, against WALK_LIMIT.
        if find.indexable and left * walked > WALK_LIMIT * len(hits):
            return hits + await _hits(conn, _through_indexes(scope, find, below, left), find.tier)
        budget = WALK_LIMIT


async def _walk(
    conn: AsyncConnection, scope: _Scope, find: _Find, below: Key | None, budget: int, need: int
) -> _Walked:
    """The first ``need`` hits among the caller's next ``budget`` messages below ``below``.

    Read through a cursor, not with a LIMIT: with one, the planner expects the walk to stop
    after about ``need`` candidates (it cannot tell how many pass the check), and for a
    caller in one small conversation it walks the newest messages of every conversation —
    770,000 index entries instead of sorting its 2,500 (68 ms instead of 8 at a million
    messages). Without it, it plans the candidates as a whole, and the executor still stops
    when the reading does. The last candidate comes as a row of its own (no score unless it
    is a hit), numbered: where the walk stopped, and whether it ran out."""
    result = await conn.stream(_walk_statement(scope, find, below, budget))
    try:
        # Exactly the rows needed: the executor walks until it has produced what is asked
        # for (at least 50: the driver adapter's first read).
        rows = await result.fetchmany(need)
    finally:
        await result.close()
    hits: list[Hit] = []
    for row in rows:
        if row.score is not None:
            hits.append(Hit(row.id, row.created_at, find.tier, float(row.score)))
        if row.last:
            return _Walked(hits, int(row.number), (row.created_at, row.id))
    if len(hits) == need:
        return _Walked(hits)
    return _Walked(hits, 0)  # no candidate at all


def _walk_statement(scope: _Scope, find: _Find, below: Key | None, budget: int) -> Select[Any]:
    """The caller's next ``budget`` messages below ``below``, newest first, each with its
    score if it is a hit: an index-only walk, then each candidate's row by its primary key.
    Only hits and the last candidate are returned."""
    c = _candidate
    candidates = (
        select(c.c.id, c.c.created_at)
        .where(*scope.listed(c), *find.in_range(c, below))
        .order_by(c.c.created_at.desc(), c.c.id.desc())
        .limit(budget)
        .subquery("candidates")
    )
    newest_first = (candidates.c.created_at.desc(), candidates.c.id.desc())
    walked = select(
        candidates.c.id,
        candidates.c.created_at,
        func.row_number().over(order_by=newest_first).label("number"),
        func.lead(candidates.c.id).over(order_by=newest_first).is_(None).label("last"),
    ).subquery("walked")
    # Each candidate's row checked in the walk's order. OFFSET 0 keeps PostgreSQL from
    # flattening this into a join it may run the other way round: every message matching
    # the terms first, then the candidates — for a misestimated ILIKE, 0.9 s instead of 80 ms
    # (a short CJK term); for a prefix in one message of seven, 137,000 rows, 0.7 s.
    row = (messages.c.id == walked.c.id, _condition_on_row(find), *scope.on_row())
    checked = select(*find.columns()).where(*row).offset(0).lateral("checked")
    score = checked.c.score
    return (
        select(walked.c.id, walked.c.created_at, walked.c.number, walked.c.last, score.label("score"))
        .select_from(walked.outerjoin(checked, true()))
        .where(or_(score.isnot(None), walked.c.last))
        # The walk's own order: no sort, so reading stops the walk.
        .order_by(walked.c.created_at.desc(), walked.c.id.desc())
    )


def _condition_on_row(find: _Find) -> ColumnElement[bool]:
    if find.tier == 0:
        return find.terms.whole()
    return find.terms.on_row(partial_only=True)


def _through_indexes(scope: _Scope, find: _Find, below: Key | None, need: int) -> Select[Any]:
    """The newest ``need`` hits below ``below``, every match found through the indexes."""
    scoped = [*scope.listed(messages), *find.in_range(messages, below)]
    if find.tier == 0:
        condition = find.terms.whole()
    else:
        # Each term's index set narrowed to the same messages, so the planner can combine
        # its indexes with the conversations' and the time range's.
        condition = find.terms.through_indexes(scoped, partial_only=True)
    return (
        select(messages.c.id, messages.c.created_at, *find.columns())
        .where(condition, *scoped, *scope.on_row())
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(need)
    )


async def _hits(conn: AsyncConnection, statement: Select[Any], tier: int) -> list[Hit]:
    return [Hit(row.id, row.created_at, tier, float(row.score)) for row in await conn.execute(statement)]


def _bounds(window: Window | None) -> tuple[Key | None, Key | None]:
    if window is None:
        return None, None
    return _key(window.below), _key(window.down_to)


def _key(bound: Bound | None) -> Key | None:
    """A window bound as a PostgreSQL (created_at, id) key."""
    if bound is None:
        return None
    assert isinstance(bound, tuple), "PostgreSQL windows are bounded by (created_at, id)"
    return (bound[0], bound[1])
