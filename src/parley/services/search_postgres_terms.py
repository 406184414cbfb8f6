"""PostgreSQL: a search's terms as conditions on ``messages`` (``search_postgres`` finds the
hits with them).

Each condition comes in the two shapes ``search_postgres`` chooses between:

- on the row (``on_row``): checked on one candidate row at a time, for a walk through the
  caller's newest messages — no index, so nothing is read beyond the candidates walked.
- through the indexes (``through_indexes``): written so that PostgreSQL combines the word
  and trigram GIN indexes of migrations 0002 / 0017 and the file-name indexes of 0007 —
  every match of the term, wherever it is, found without reading the rest.

Both shapes match exactly the same rows: a term matches a message by its text as words,
inside a word (3+ characters, or text in scripts written without spaces), or by the name of
one of its live files. Substrings too short for trigrams match the text only: through the
bigram index of migration 0020 when they have two characters, else by ILIKE alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union,
)

from parley.services.search_query import LIKE_ESCAPE, Term, TermKind, like_patterns, tsquery_prefix
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages

# The text search configuration and the stored vector of migration 0002.
_TS_CONFIG: ColumnElement[Any] = literal_column("'parley_search'")
VECTOR: ColumnElement[Any] = literal_column("messages.search_vector")
# Both GIN indexes cover indexed rows only (migration 0017): every condition that should use
# one says so (for ``@@`` the planner infers it; ILIKE needs it spelled out).
INDEXED: ColumnElement[bool] = VECTOR.isnot(None)
_RANK_NORMALISATION = 1  # ts_rank_cd: divide by 1 + log(document length)
# The indexed expression of migration 0007 (file names: ".", "_" and "-" read as spaces).
# Literal constants, as in the index definition: bound parameters would not match it.
_NAME_VECTOR: ColumnElement[Any] = func.to_tsvector(
    _TS_CONFIG, func.translate(attachments.c.name, literal_column("'._-'"), literal_column("'   '"))
)


def _tsquery(term: Term) -> ColumnElement[Any]:
    if term.kind is TermKind.PREFIX:
        return func.to_tsquery(_TS_CONFIG, tsquery_prefix(term))
    return func.phraseto_tsquery(_TS_CONFIG, term.text)


def _has_bigrams(term: Term) -> bool:
    """Whether the bigram index holds what a short substring needs: two characters or more,
    as ILIKE compares them (lower-cased). Such a term is in a script without spaces, so
    each of its bigrams holds a character the index keeps (migration 0020)."""
    return all(len(variant.lower()) >= 2 for variant in term.variants)


def _indexable(term: Term) -> bool:
    return not term.short_substring or _has_bigrams(term)


def _bigrams(text: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.parley_search_bigrams(text)


@dataclass(frozen=True, slots=True)
class TermConditions:
    """A search's terms as SQL on ``messages`` (``VECTOR`` names its vector)."""

    terms: tuple[Term, ...]

    @classmethod
    def of(cls, terms: Sequence[Term]) -> TermConditions:
        return cls(tuple(terms))

    @property
    def ranked(self) -> bool:
        """Whether some term has words: only then are there whole-word hits to rank."""
        return any(term.uses_words for term in self.terms)

    @property
    def indexable(self) -> bool:
        """Whether an index can find the matches: some term has one (that term's index set
        then drives the search). Not: one-character substrings, matched by ILIKE only."""
        return any(_indexable(term) for term in self.terms)

    def whole(self) -> ColumnElement[bool]:
        """Every term as whole words (tier 0): the word index, or one check on the row."""
        return VECTOR.bool_op("@@")(self._every_word())

    def score(self) -> ColumnElement[Any]:
        """Of a whole-word hit, lower first: minus its ts_rank_cd."""
        rank = func.ts_rank_cd(VECTOR, self._every_word(), _RANK_NORMALISATION, type_=Float)
        return cast(-rank, Float)

    def on_row(self, *, partial_only: bool) -> ColumnElement[bool]:
        """Every term matches, checked on the row. ``partial_only``: and not every term
        as whole words (tier 1)."""
        conditions = [or_(*self._alternatives(term, names_by_row=True, bigrams=False)) for term in self.terms]
        return and_(*conditions, *self._not_whole(partial_only))

    def through_indexes(self, in_range: Sequence[ColumnElement[bool]], *, partial_only: bool) -> ColumnElement[bool]:
        """Every term matches, each term as the set of ids its indexes find (in
        ``in_range``, conditions on ``messages`` that narrow each set)."""
        conditions: list[ColumnElement[bool]] = []
        for term in self.terms:
            text = self._alternatives(term, names_by_row=False, bigrams=True)
            names = self._name_matches(term)
            if names is None:
                conditions.append(or_(*text))
                continue
            # One IN over the ids found by either index: an OR with a subquery would stop
            # PostgreSQL from combining the text indexes (a BitmapOr) and read every message.
            by_text = select(messages.c.id).where(or_(*text), *in_range)
            # Unsent uploads match too, with no message id: IN finds nothing for them.
            by_name = select(attachments.c.message_id).where(attachments.c.deleted_at.is_(None), names)
            conditions.append(messages.c.id.in_(union(by_text, by_name)))
        return and_(*conditions, *self._not_whole(partial_only))

    def _every_word(self) -> ColumnElement[Any]:
        queries = [_tsquery(term) for term in self.terms if term.uses_words]
        assert queries, "only a query with words is ranked"
        return reduce(lambda a, b: a.op("&&")(b), queries)

    def _not_whole(self, partial_only: bool) -> list[ColumnElement[bool]]:
        return [not_(self.whole())] if partial_only and self.ranked else []

    def _alternatives(self, term: Term, *, names_by_row: bool, bigrams: bool) -> list[ColumnElement[bool]]:
        """How ``term`` matches a message's text; ``names_by_row``: and its files' names,
        as one IN over the matching names (computed once, then a hash lookup per row);
        ``bigrams``: a short substring through the bigram index, ILIKE checking each."""
        alternatives: list[ColumnElement[bool]] = []
        if term.uses_words:
            alternatives.append(VECTOR.bool_op("@@")(_tsquery(term)))
        if term.substring:
            through_bigrams = bigrams and term.short_substring and _has_bigrams(term)
            for variant, pattern in zip(term.variants, like_patterns(term), strict=True):
                matches = [INDEXED, messages.c.content.ilike(pattern, escape=LIKE_ESCAPE)]
                if through_bigrams:
                    # The index expression exactly; the term's bigrams by the same function.
                    held = _bigrams(messages.c.content).op("@>")(_bigrams(literal(variant)))
                    matches.insert(1, held)
                alternatives.append(and_(*matches))
        names = self._name_matches(term) if names_by_row else None
        if names is not None:
            alternatives.append(
                messages.c.id.in_(select(attachments.c.message_id).where(attachments.c.deleted_at.is_(None), names))
            )
        return alternatives

    @staticmethod
    def _name_matches(term: Term) -> ColumnElement[bool] | None:
        """How ``term`` matches a file's name (None: names are not searched for it)."""
        if term.short_substring:
            return None
        matches: list[ColumnElement[bool]] = []
        if term.uses_words:
            matches.append(_NAME_VECTOR.bool_op("@@")(_tsquery(term)))
        if term.trigram:
            matches.extend(attachments.c.name.ilike(p, escape=LIKE_ESCAPE) for p in like_patterns(term))
        return or_(*matches) if matches else None
