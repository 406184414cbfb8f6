"""The search query language and snippets, without a server: parsing, the FTS5 strings it
produces (checked against a real in-memory FTS5), highlight ranges and snippet windows."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime

import pytest

from parley.errors import ValidationFailed
from parley.ids import new_id
from parley.services.search_query import (
    MAX_TERMS,
    Position,
    SearchFilters,
    Term,
    TermKind,
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
from parley.services.search_bigrams import bigram_keys, fts5_bigram_keys
from parley.services.search_snippets import ELLIPSIS, SNIPPET_CHARS, find_highlights, make_snippet
from tests.support.random_search_queries import random_queries


def terms(q: str) -> list[tuple[str, str]]:
    return [(t.kind.value, t.text) for t in parse_query(q).terms]


def test_words_phrases_and_prefixes() -> None:
    assert terms("deploy prod") == [("word", "deploy"), ("word", "prod")]
    assert terms('"deploy to prod" now') == [("phrase", "deploy to prod"), ("word", "now")]
    assert terms("deplo*") == [("prefix", "deplo")]
    assert terms('"deploy to pro"*') == [("prefix", "deploy to pro")]
    assert terms("d* x*") == [("word", "d"), ("word", "x")]  # too short to be a prefix
    assert terms("Deploy deploy DEPLOY") == [("word", "Deploy")]  # duplicates dropped


def test_operators_and_punctuation_are_text() -> None:
    assert terms("a OR b NOT c NEAR d AND e") == [
        ("word", w) for w in ("a", "OR", "b", "NOT", "c", "NEAR", "d", "AND", "e")
    ]
    assert terms("(deploy), 'prod'; --") == [("word", "deploy"), ("word", "prod")]
    assert terms("content:deploy") == [("word", "content:deploy")]
    assert terms('say "hello') == [("word", "say"), ("word", "hello")]  # lone quote ignored
    assert terms("'; --") == [] and terms('""') == [] and terms("%%") == []
    assert terms("e-mail user@example.com") == [("word", "e-mail"), ("word", "user@example.com")]


def test_normalisation_and_scripts() -> None:
    [cafe] = parse_query("cafe\u0301").terms
    assert cafe.text == "café" and cafe.variants == ("café", "cafe\u0301")
    [tokyo] = parse_query("東京").terms
    assert tokyo.substring and not tokyo.trigram  # two characters: LIKE
    [tower] = parse_query("東京タワー").terms
    assert tower.substring and tower.trigram
    [go] = parse_query("go").terms
    assert not go.substring  # a short word in a script with spaces: whole words only
    [party] = parse_query("🎉🎊").terms
    assert not party.uses_words and party.substring and not party.trigram
    [phrase] = parse_query('"quick brown"').terms
    assert phrase.uses_words and not phrase.substring  # an exact phrase stays exact
    assert parse_query("\u0301\u0301 ok").terms == (Term(TermKind.WORD, "ok"),)


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "must not be empty"),
        (" \t\n", "must not be empty"),
        ("x", "at least 2 characters"),
        ("x" * 501, "at most 500"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), f"at most {MAX_TERMS}"),
    ],
)
def test_bad_queries(q: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_query(q)
    assert caught.value.details[0].field == "q" and message in caught.value.message


def test_expressions() -> None:
    [word, phrase, prefix] = parse_query('deploy "to prod" ver*').terms
    assert fts5_words(word) == '"deploy"' and fts5_words(prefix) == '"ver" *'
    assert fts5_all_words((word, phrase, prefix)) == '"deploy" AND "to prod" AND "ver" *'
    assert fts5_words(Term(TermKind.WORD, 'a"b')) == '"a""b"'
    [cafe] = parse_query("café").terms
    assert fts5_trigram(cafe) == '"café" OR "cafe\u0301"'
    assert tsquery_prefix(Term(TermKind.PREFIX, "deploy to pro")) == "'deploy' <-> 'to' <-> 'pro':*"
    assert like_patterns(Term(TermKind.WORD, "50%_/x")) == ["%50/%/_//x%"]


def test_any_input_gives_valid_fts5_expressions() -> None:
    """Whatever is typed, FTS5 accepts what the parser hands it (no syntax errors)."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE w USING fts5(content, tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(content, tokenize='trigram')")
    db.execute("INSERT INTO w VALUES ('deploy to prod 東京タワー')")
    db.execute("INSERT INTO t VALUES ('deploy to prod 東京タワー')")
    db.execute("CREATE VIRTUAL TABLE b USING fts5(keys, tokenize='ascii', detail='none')")
    db.execute("INSERT INTO b VALUES (?)", (" ".join(bigram_keys("deploy to prod 東京タワー")),))
    for q in random_queries(2000):
        try:
            query = parse_query(q)
        except ValidationFailed:
            continue
        for term in query.terms:
            if term.uses_words:
                db.execute("SELECT rowid FROM w WHERE w MATCH ?", (fts5_words(term),)).fetchall()
            if term.trigram:
                db.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts5_trigram(term),)).fetchall()
        if fts5_all_words(query.terms):
            db.execute("SELECT bm25(w) FROM w WHERE w MATCH ?", (fts5_all_words(query.terms),)).fetchall()
        for term in query.terms:
            for variant in term.variants:
                if keys := bigram_keys(variant):
                    db.execute("SELECT rowid FROM b WHERE b MATCH ?", (fts5_bigram_keys(keys),)).fetchall()


def test_highlights() -> None:
    def marked(content: str, q: str) -> list[str]:
        return [content[a:b] for a, b in find_highlights(content, parse_query(q).terms)]

    assert marked("Deploy, then deployment; redeploy", "deploy") == ["Deploy", "deploy", "deploy"]
    assert marked("Deploy, then deployment", "deplo*") == ["Deploy", "deployment"]
    assert marked("go ago good go", "go") == ["go", "go"]  # short words: whole words only
    assert marked("Deploy, to prod!", '"deploy to prod"') == ["Deploy, to prod"]
    assert marked("un café, cafe\u0301 noir", "CAFE") == ["café", "cafe\u0301"]
    assert marked("ПРИВЕТ мир", "привет") == ["ПРИВЕТ"]
    assert marked("東京タワーに行く", "タワー") == ["タワー"]
    assert marked("🚀 launch 🎉 party", "🎉 party") == ["🎉", "party"]
    assert marked("Straße", "strasse") == ["Straße"]


def test_snippets() -> None:
    [term] = parse_query("needle").terms
    short = make_snippet("a needle here", [term])
    assert short.text == "a needle here" and short.highlights == ((2, 8),)
    long = "word " * 400 + "🎉 needle " + "tail " * 400
    snippet = make_snippet(long, [term])
    assert snippet.text.startswith(ELLIPSIS) and snippet.text.endswith(ELLIPSIS)
    assert len(snippet.text) <= SNIPPET_CHARS + 2
    [(start, end)] = snippet.highlights
    assert snippet.text[start:end] == "needle"
    nothing = make_snippet("x" * 1000, [term])
    assert nothing.text == "x" * SNIPPET_CHARS + ELLIPSIS and nothing.highlights == ()
    # Never cut inside a character made of several code points.
    family = "👨‍👩‍👧" * 100 + " needle"
    cut = make_snippet(family, [term]).text.lstrip(ELLIPSIS)
    assert not cut.startswith("\u200d") and cut.index("👨") == 0


def test_filters_and_cursors() -> None:
    assert parse_time("after", "2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("after", "2024-05-01T10:00:00 02:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("after", "2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    for bad in ("yesterday", "2024-02-30", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValidationFailed):
            parse_time("after", bad)
    assert check_id("sender_id", "") is None
    with pytest.raises(ValidationFailed):
        check_id("sender_id", "x\x00")

    query = parse_query("hello")
    fingerprint = SearchFilters().fingerprint(query)
    position = Position(0, -1.5, datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), new_id())
    assert decode_cursor(encode_cursor(fingerprint, position), fingerprint) == position
    other = SearchFilters(sender_id=new_id()).fingerprint(query)
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor(fingerprint, position), other)

    def forged(**changes: object) -> str:
        payload = {"f": fingerprint, "t": 0, "s": -1.5, "c": "2024-05-01T10:00:00+00:00", "i": new_id()}
        raw = json.dumps(payload | changes).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    decode_cursor(forged(), fingerprint)
    # Cursors are not signed: anything that could not come from a search is refused
    # before it gets near the database (huge integers, NUL, NaN, naive times).
    for bad in (
        forged(t=2**70), forged(t=True), forged(s="1"), forged(i="x\x00"), forged(i=None),
        forged(c="2024-05-01T10:00:00"), forged(c=5), "%%%", "", "e30",
    ):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad, fingerprint)
    with pytest.raises(ValidationFailed):
        decode_cursor(base64.urlsafe_b64encode(b'{"f":"x","t":0,"s":NaN}').decode(), fingerprint)
