"""The keys of SQLite's bigram index: what they hold, that they never miss what SQLite's
LIKE finds, and that they do not depend on the interpreter's Unicode version."""

from __future__ import annotations

import random
import sqlite3

from parley.services.search_bigrams import INDEXED_CHARACTERS, bigram_keys, bigram_rows, fts5_bigram_keys
from parley.services.search_query import Term, TermKind, like_patterns


def key(a: str, b: str) -> str:
    return f"{ord(a):06x}{ord(b):06x}"


def test_what_a_key_holds() -> None:
    """Two characters, ASCII folded, kept when one of them is in the table; ASCII text and
    letters of scripts with spaces have none."""
    assert bigram_keys("plain text, 100% ascii") == frozenset()
    assert bigram_keys("Grüße, Ελλάδα") == frozenset()
    assert bigram_keys("A東京") == {key("a", "東"), key("東", "京")}
    assert bigram_keys("👍🏽") == {key("👍", "🏽")}
    # Only ASCII is folded, as SQLite's LIKE folds only ASCII: a capital sigma is its own key.
    assert bigram_keys("Σ東") == {key("Σ", "東")} != bigram_keys("σ東")
    assert fts5_bigram_keys(bigram_keys("東京都")) == f"{key('京', '都')} AND {key('東', '京')}"
    assert bigram_rows([(1, "ascii only"), (2, "東京"), (3, "東")]) == [{"doc_id": 2, "bigrams": key("東", "京")}]


def test_the_table_is_sorted_and_disjoint() -> None:
    """Lookups bisect the table: its ranges must be in order and not overlap."""
    for (first, last), (next_first, _) in zip(INDEXED_CHARACTERS, INDEXED_CHARACTERS[1:], strict=False):
        assert first <= last < next_first


def test_keys_do_not_depend_on_the_unicode_version() -> None:
    """A character assigned after Unicode 14 (U+1FA77, pink heart: Unicode 15) is in no key,
    whatever the interpreter knows of it; a term made of it is matched by LIKE alone."""
    assert bigram_keys("\U0001FA77\U0001FA77") == frozenset()
    assert bigram_keys("東\U0001FA77") == {key("東", "\U0001FA77")}  # kept for the 東


def test_keys_never_miss_what_like_matches() -> None:
    """Whenever SQLite's LIKE (the check after the index) finds a two-character term in a
    text, the text has every key of the term. Asked of SQLite's own LIKE, on texts mixing
    scripts, cases and characters with unusual case mappings (final sigma, dotted İ, ß, the
    Kelvin sign)."""
    alphabet = "東京タワー駅aAzZΣσςİißSK\u212a👍🏽❤\ufe0f한국 ,é\u0301"
    rng = random.Random(5)
    db = sqlite3.connect(":memory:")
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 12)))
        start = rng.randrange(len(text) - 1)
        term = text[start : start + 2]
        if rng.random() < 0.5:  # and a term in another case than the text
            term = term.swapcase() if rng.random() < 0.5 else term.upper()
        if len(term) != 2 or not (keys := bigram_keys(term)):
            continue
        [pattern] = like_patterns(Term(TermKind.WORD, term))[:1]
        (liked,) = db.execute("SELECT ? LIKE ? ESCAPE '/'", (text, pattern)).fetchone()
        if liked:
            checked += 1
            assert keys <= bigram_keys(text), (text, term)
    assert checked > 500
