"""The search request: user text → terms → safe FTS5 strings and tsquery text; filters and
the page cursor, validated.

This module owns what a user may type into the search box and what it means, and every
check on the other parameters. It is pure (no database); ``parley.services.search`` turns
the terms into SQL with bound parameters.

Syntax — everything else is literal text:

- ``deploy prod``: every term must match (AND).
- ``"deploy to prod"``: an exact phrase (balanced double quotes). An unmatched quote is
  ignored.
- ``deplo*`` / ``"deploy to pro"*``: a trailing ``*`` makes the last word a prefix.
- FTS and SQL syntax typed by users (``OR``, ``NOT``, ``NEAR``, ``(``, ``:``, ``col:word``,
  ``'; --``) is plain text: the words inside are searched, the punctuation is ignored.

How a term matches (``Term``): as words through the word index (case- and diacritic-
insensitive), and — for words of 3+ characters and for text in scripts written without
spaces (CJK, Thai, ...) or with emoji — as a substring through the trigram index. Substrings
shorter than 3 characters cannot use a trigram index; those fall back to ``LIKE`` on the
caller's own messages. Short words in scripts with spaces ("go", "да") match as whole words
only, which is what people mean by them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from parley.clock import isoformat
from parley.errors import ValidationFailed
from parley.ids import looks_like_id

MIN_QUERY_CHARS = 2
MAX_QUERY_CHARS = 500
# Each term costs an index lookup (two on SQLite); sixteen is more than anyone types.
MAX_TERMS = 16
# The trigram indexes find nothing shorter (FTS5 trigram, pg_trgm alike).
TRIGRAM_MIN_CHARS = 3
# A one-letter prefix would walk a large part of the word index for little meaning.
MIN_PREFIX_CHARS = 2
LIKE_ESCAPE = "/"

# Scripts written without spaces between words: a word index holds whole runs of them
# ("東京タワーに行く" is one token), so they are searched as substrings.
_UNSEGMENTED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x31FF),  # Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFFDC),  # half-width Katakana and Hangul
    (0x1B000, 0x1B16F),  # Kana supplement and extensions
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
_EMOJI_MODIFIERS = (0x1F3FB, 0x1F3FF)  # skin tones (category Sk)


class TermKind(StrEnum):
    WORD = "word"
    PHRASE = "phrase"
    PREFIX = "prefix"


def is_unsegmented(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _UNSEGMENTED_RANGES)


def _is_pictograph(ch: str) -> bool:
    """Emoji and other symbols people search for; word indexes skip them."""
    if unicodedata.category(ch) == "So":
        return True
    return _EMOJI_MODIFIERS[0] <= ord(ch) <= _EMOJI_MODIFIERS[1]


def is_searchable(ch: str) -> bool:
    """Letters, digits, marks and pictographs; not punctuation, spaces or ASCII symbols."""
    return unicodedata.category(ch)[0] in "LNM" or _is_pictograph(ch)


def word_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word: a letter or digit, then letters, digits and marks."""
    runs: list[tuple[int, int]] = []
    start = -1
    for index, ch in enumerate(text):
        if ch.isalnum() or (start >= 0 and unicodedata.category(ch)[0] == "M"):
            if start < 0:
                start = index
        elif start >= 0:
            runs.append((start, index))
            start = -1
    if start >= 0:
        runs.append((start, len(text)))
    return runs


def _trim(text: str) -> str:
    """Drop punctuation and symbols at the edges: ``(deploy),`` → ``deploy``."""
    start, end = 0, len(text)
    while start < end and not is_searchable(text[start]):
        start += 1
    while end > start and not is_searchable(text[end - 1]):
        end -= 1
    # A combining mark cannot start a term: it belongs to the character before it.
    while start < end and unicodedata.combining(text[start]):
        start += 1
    return text[start:end]


@dataclass(frozen=True)
class Term:
    """One thing to find. ``text`` is NFC-normalised and trimmed of edge punctuation."""

    kind: TermKind
    text: str

    @cached_property
    def tokens(self) -> tuple[str, ...]:
        """The words in it; empty for emoji or symbols only."""
        return tuple(self.text[a:b] for a, b in word_runs(self.text))

    @property
    def uses_words(self) -> bool:
        return bool(self.tokens)

    @cached_property
    def unsegmented(self) -> bool:
        """Has text a word index cannot split: CJK and similar scripts, emoji, symbols."""
        return any(is_unsegmented(ch) or _is_pictograph(ch) for ch in self.text)

    @property
    def substring(self) -> bool:
        """Whether the term also matches inside words. Phrases and prefixes keep their
        meaning in scripts with spaces; partial words need 3+ characters to mean much."""
        if self.kind is TermKind.WORD and len(self.text) >= TRIGRAM_MIN_CHARS:
            return True
        return self.unsegmented

    @property
    def trigram(self) -> bool:
        """Substring through the trigram index (else through ``LIKE``)."""
        return self.substring and len(self.text) >= TRIGRAM_MIN_CHARS

    @property
    def short_substring(self) -> bool:
        """A substring too short for trigrams: matched in the message text only (not in file
        names), through a bigram index where it has two characters, else by ``LIKE``."""
        return self.substring and not self.trigram

    @property
    def variants(self) -> tuple[str, ...]:
        """The text as stored: messages keep what clients sent, composed or decomposed
        ("é" or "e" + U+0301), and substring indexes compare code points."""
        decomposed = unicodedata.normalize("NFD", self.text)
        return (self.text,) if decomposed == self.text else (self.text, decomposed)


@dataclass(frozen=True)
class SearchQuery:
    text: str  # NFC, stripped
    terms: tuple[Term, ...]


def parse_query(raw: str) -> SearchQuery:
    """Validate and parse ``q``; ``ValidationFailed`` on field ``q``.

    A query with no searchable text left (``'; --``) parses to no terms and finds nothing;
    it is not an error, since it was not empty."""
    if len(raw) > MAX_QUERY_CHARS:
        raise ValidationFailed.field("q", f"must be at most {MAX_QUERY_CHARS} characters")
    # Control characters are never content worth finding, and NUL ends an FTS5 string
    # (and is refused by PostgreSQL): they separate words like spaces do.
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in raw)
    text = unicodedata.normalize("NFC", cleaned).strip()
    if not text:
        raise ValidationFailed.field("q", "must not be empty")
    if len(text) < MIN_QUERY_CHARS:
        raise ValidationFailed.field(
            "q", f"must be at least {MIN_QUERY_CHARS} characters: one character matches too much"
        )
    terms: list[Term] = []
    seen: set[tuple[TermKind, str]] = set()
    for kind, body in _split(text):
        term = _make_term(kind, body)
        if term is None:
            continue
        key = (term.kind, term.text.casefold())
        if key not in seen:
            seen.add(key)
            terms.append(term)
    if len(terms) > MAX_TERMS:
        raise ValidationFailed.field("q", f"must have at most {MAX_TERMS} words or phrases")
    return SearchQuery(text, tuple(terms))


def _split(text: str) -> list[tuple[TermKind, str]]:
    """Words, "phrases" and trailing-star prefixes, left to right."""
    pieces: list[tuple[TermKind, str]] = []
    index, length = 0, len(text)
    while index < length:
        ch = text[index]
        if ch.isspace():
            index += 1
            continue
        if ch == '"':
            close = text.find('"', index + 1)
            if close < 0:  # unbalanced: the quote is just ignored
                index += 1
                continue
            body = text[index + 1 : close]
            index = close + 1
            starred = index < length and text[index] == "*"
            while index < length and text[index] == "*":
                index += 1
            pieces.append((TermKind.PREFIX if starred else TermKind.PHRASE, body))
            continue
        end = index
        while end < length and not text[end].isspace() and text[end] != '"':
            end += 1
        word = text[index:end]
        index = end
        stem = word.rstrip("*")
        pieces.append((TermKind.PREFIX if stem != word else TermKind.WORD, stem))
    return pieces


def _make_term(kind: TermKind, body: str) -> Term | None:
    text = _trim(body)
    if not text:
        return None
    if not word_runs(text) and not any(_is_pictograph(ch) for ch in text):
        return None  # marks only: nothing either index could hold
    if kind is TermKind.PREFIX:
        runs = word_runs(text)
        last = text[runs[-1][0] : runs[-1][1]] if runs else ""
        if len(last) < MIN_PREFIX_CHARS:
            kind = TermKind.WORD
    return Term(kind, text)


# --- the expressions the databases receive (always as bound parameters)


def fts5_string(text: str) -> str:
    """An FTS5 string literal: inside double quotes everything is text, not syntax."""
    return '"' + text.replace('"', '""') + '"'


def fts5_words(term: Term) -> str:
    """The term for the FTS5 word index (unicode61 splits the string into a phrase)."""
    literal = fts5_string(term.text)
    return literal + " *" if term.kind is TermKind.PREFIX else literal


def fts5_all_words(terms: tuple[Term, ...]) -> str:
    return " AND ".join(fts5_words(t) for t in terms if t.uses_words)


def fts5_trigram(term: Term) -> str:
    return " OR ".join(fts5_string(v) for v in term.variants)


def tsquery_prefix(term: Term) -> str:
    """``to_tsquery`` text for a prefix term: its words in sequence, the last one a prefix.
    Words hold only letters, digits and marks; quotes are escaped all the same."""
    quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in term.tokens]
    return " <-> ".join(quoted) + ":*"


def like_patterns(term: Term) -> list[str]:
    """``%text%`` for each stored form, with LIKE wildcards made literal."""
    patterns = []
    for variant in term.variants:
        escaped = (
            variant.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
            .replace("%", LIKE_ESCAPE + "%")
            .replace("_", LIKE_ESCAPE + "_")
        )
        patterns.append(f"%{escaped}%")
    return patterns


# --- the rest of the request: filters and the cursor

HAS_VALUES = ("attachment",)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    conversation_id: str | None = None
    sender_id: str | None = None
    after: datetime | None = None  # inclusive
    before: datetime | None = None  # exclusive
    has_attachment: bool = False

    def fingerprint(self, query: SearchQuery) -> str:
        """What a cursor is bound to: the same search, another page."""
        parts = [
            query.text,
            self.conversation_id,
            self.sender_id,
            isoformat(self.after) if self.after else None,
            isoformat(self.before) if self.before else None,
            self.has_attachment,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


# A message's place in newest-first order: (created_at, message id).
Key = tuple[datetime, str]
# Where a ranking window starts or ends: a SQLite index doc id, or a PostgreSQL key.
Bound = int | Key


@dataclass(frozen=True, slots=True)
class Window:
    """The hits ranked together (``parley.services.search``): those below ``below``
    (exclusive; None: the newest) down to ``down_to`` (inclusive; None: the oldest)."""

    below: Bound | None
    down_to: Bound | None


@dataclass(frozen=True, slots=True)
class Hit:
    """A message a search found, with its sort key inside its window: ``tier`` (0: every
    term as whole words, 1: some term only partly), ``score`` (lower first), then newest
    first."""

    id: str
    created_at: datetime
    tier: int
    score: float


@dataclass(frozen=True, slots=True)
class Position:
    """The sort key of the last result of a page: its window, then (tier, score, created_at,
    id) inside it."""

    tier: int
    score: float
    created_at: datetime
    message_id: str
    window: Window | None = None


_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")


def parse_time(field: str, value: str | None) -> datetime | None:
    """ISO 8601 date (midnight UTC) or date-time; without an offset it is UTC."""
    if value is None or value == "":
        return None
    # "+01:00" unescaped in a query string arrives as " 01:00".
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed.field(
            field, "must be an ISO 8601 date or date-time, like 2024-05-01 or 2024-05-01T09:30:00Z"
        ) from None


def check_id(field: str, value: str | None) -> str | None:
    """An id filter. A well-formed id that names nothing visible simply matches nothing."""
    if value is None or value == "":
        return None
    if not looks_like_id(value):
        raise ValidationFailed.field(field, "is not an id")
    return value


def check_has(value: str | None) -> bool:
    if value is None or value == "":
        return False
    if value not in HAS_VALUES:
        raise ValidationFailed.field("has", "must be 'attachment'")
    return True


def _encode_bound(bound: Bound | None) -> Any:
    if bound is None or isinstance(bound, int):
        return bound
    return [bound[0].astimezone(UTC).isoformat(), bound[1]]


def _decode_bound(value: Any) -> Bound | None:
    """Raises ValueError for anything ``_encode_bound`` cannot have made."""
    if value is None:
        return None
    if type(value) is int and 0 <= value < 2**63:
        return value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
        and looks_like_id(value[1])
    ):
        moment = datetime.fromisoformat(value[0])
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return (moment.astimezone(UTC), value[1])
    raise ValueError("not a bound")


def encode_cursor(fingerprint: str, position: Position) -> str:
    payload = {
        "f": fingerprint,
        "t": position.tier,
        "s": position.score,
        "c": position.created_at.astimezone(UTC).isoformat(),
        "i": position.message_id,
    }
    if position.window is not None:
        payload["w"] = [_encode_bound(position.window.below), _encode_bound(position.window.down_to)]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, fingerprint: str) -> Position:
    problem = ValidationFailed.field("cursor", "is not a cursor from this search")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        tier, score, created, message_id = (payload[k] for k in ("t", "s", "c", "i"))
        if payload["f"] != fingerprint:
            raise problem
        # Anyone can build a cursor (it is not signed): every value must be one the
        # search itself could have produced before it reaches the database.
        valid = (
            tier in (0, 1)
            and type(tier) is int
            and type(score) in (int, float)
            and math.isfinite(score)
            and isinstance(message_id, str)
            and looks_like_id(message_id)
            and isinstance(created, str)
        )
        if not valid:
            raise problem
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            raise problem
        window = None
        if "w" in payload:
            bounds = payload["w"]
            if not (isinstance(bounds, list) and len(bounds) == 2):
                raise problem
            window = Window(_decode_bound(bounds[0]), _decode_bound(bounds[1]))
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise problem from None
    return Position(tier, float(score), created_at.astimezone(UTC), message_id, window)
