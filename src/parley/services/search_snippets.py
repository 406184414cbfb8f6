"""Snippets and highlight ranges for search hits, computed from the message text.

Done here rather than with FTS5 ``snippet()`` or ``ts_headline()`` so a hit looks the same
on both databases and carries no markup: a highlight is a ``[start, end)`` range of code
points (Python ``str`` indexes; ``Array.from(snippet)`` indexes in JavaScript) into the
snippet, which clients render — safely — as they like.

Matching mirrors ``search_query.Term``, a little more generously: text is compared after
case folding and with diacritics removed, whatever the index found it by.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parley.services.search_query import Term, TermKind, word_runs

SNIPPET_CHARS = 200
# How much text to keep before the first highlight, so it is read in context.
CONTEXT_CHARS = 60
# How far a cut may move to fall between words rather than inside one.
WORD_BOUNDARY_SLACK = 20
ELLIPSIS = "…"
ZERO_WIDTH_JOINER = "\u200d"


@dataclass(frozen=True, slots=True)
class Snippet:
    text: str
    highlights: tuple[tuple[int, int], ...]

    def to_public(self) -> dict[str, Any]:
        return {
            "snippet": self.text,
            "highlights": [{"start": start, "end": end} for start, end in self.highlights],
        }


def fold(text: str) -> tuple[str, list[int]]:
    """Case-folded, diacritic-free text, and for each of its characters the index of the
    character of ``text`` it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    out: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for part in unicodedata.normalize("NFD", ch.casefold()):
            if not unicodedata.combining(part):
                out.append(part)
                origin.append(index)
    return "".join(out), origin


def find_highlights(content: str, terms: Sequence[Term]) -> list[tuple[int, int]]:
    """Sorted, merged ranges of ``content`` that match any of ``terms``."""
    folded, origin = fold(content)
    if not folded:
        return []
    runs = word_runs(folded)
    words = [folded[a:b] for a, b in runs]
    spans: list[tuple[int, int]] = []
    for term in terms:
        if term.uses_words:
            spans.extend(_word_spans(term, words, runs))
        if term.substring:
            needle = fold(term.text)[0]
            position = folded.find(needle) if needle else -1
            while position >= 0:
                spans.append((position, position + len(needle)))
                position = folded.find(needle, position + len(needle))
    ranges = []
    for a, b in spans:
        start, end = origin[a], origin[b - 1] + 1
        while end < len(content) and unicodedata.combining(content[end]):
            end += 1  # a decomposed accent belongs to the letter before it
        ranges.append((start, end))
    return _merge(ranges)


def _word_spans(
    term: Term, words: list[str], runs: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    wanted = [fold(token)[0] for token in term.tokens]
    count = len(wanted)
    spans = []
    for first in range(len(words) - count + 1):
        if words[first : first + count - 1] != wanted[:-1]:
            continue
        last = words[first + count - 1]
        if last == wanted[-1] or (term.kind is TermKind.PREFIX and last.startswith(wanted[-1])):
            spans.append((runs[first][0], runs[first + count - 1][1]))
    return spans


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def make_snippet(content: str, terms: Sequence[Term]) -> Snippet:
    """The whole text when short; else a window around the first match, with ``…`` where
    it was cut. Highlights are offsets into the returned snippet."""
    ranges = find_highlights(content, terms)
    if len(content) <= SNIPPET_CHARS:
        return Snippet(content, tuple(ranges))
    anchor = ranges[0][0] if ranges else 0
    start = max(0, anchor - CONTEXT_CHARS)
    if start > 0:
        # Start at a word boundary when one is near.
        for index in range(start, min(anchor, start + WORD_BOUNDARY_SLACK)):
            if content[index].isspace():
                start = index + 1
                break
    end = min(len(content), start + SNIPPET_CHARS)
    if end < len(content):
        cut = content.rfind(" ", max(anchor + 1, end - WORD_BOUNDARY_SLACK), end)
        if cut > 0:
            end = cut
    start, end = _whole_clusters(content, start, end)
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(content) else ""
    shift = len(prefix) - start
    inside = tuple(
        (max(a, start) + shift, min(b, end) + shift) for a, b in ranges if a < end and b > start
    )
    return Snippet(prefix + content[start:end] + suffix, inside)


def _joins_previous(content: str, index: int) -> bool:
    """Whether the character at ``index`` continues the one before (accents, emoji
    sequences), so a cut there would break a visible character."""
    ch = content[index]
    return (
        unicodedata.combining(ch) > 0
        or unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or 0x1F3FB <= ord(ch) <= 0x1F3FF  # emoji skin tone
        or ch == ZERO_WIDTH_JOINER
        or content[index - 1] == ZERO_WIDTH_JOINER
    )


def _whole_clusters(content: str, start: int, end: int) -> tuple[int, int]:
    while 0 < start < len(content) and _joins_previous(content, start):
        start -= 1
    while 0 < end < len(content) and _joins_previous(content, end):
        end += 1
    return start, end
