"""The order of search results and the loop that fills a page with them, on both databases
(``search_sqlite`` and ``search_postgres`` find the hits; ``search`` owns the request).

Hits come in ranking windows, newest window first. A window reaches down to its
``rank_window``-th whole-word hit (the last one: to the oldest message); with fewer whole-word
hits than that in all, there is no window and everything is ranked at once. Inside a window:
tier 0 — every term as whole words — by the database's relevance score (lower first), then
tier 1 — some term only inside a word or in a file name — newest first; ties newest first.

A window's tier 0 is exactly the hits that found the window, so the statement that finds a
window brings their scores and they are ordered here; tier 1 is read only when a page
reaches past them. A first page with a window therefore costs about one statement, where
reading every hit of the window again, term by term, cost up to a second at a million
messages (docs/benchmarks.md, "Round three").
"""

from __future__ import annotations

from typing import Protocol

from parley.services.search_query import Bound, Hit, Position, Window


class HitSource(Protocol):
    """One search's hits on one database."""

    async def next_window(self, below: Bound | None) -> tuple[Window | None, list[Hit]]:
        """The window below ``below`` (None: the newest) and its whole-word hits. None for
        the window of a first page with fewer than ``rank_window`` of them."""
        ...

    async def ranked_in(self, window: Window | None) -> list[Hit]:
        """Every whole-word hit of a cursor's window (edits since may have added some)."""
        ...

    async def partial(self, window: Window | None, after: Position | None, need: int) -> list[Hit]:
        """Up to ``need`` tier-1 hits in ``window``, newest first; ``after``: only those
        after this tier-1 position."""
        ...


async def fill_page(source: HitSource, position: Position | None, limit: int) -> list[tuple[Hit, Window | None]]:
    """Up to ``limit + 1`` hits after ``position``, each with the window it was ranked in:
    the rest of the cursor's window, then as many older windows as the page needs."""
    need = limit + 1
    if position is None:
        window, ranked = await source.next_window(None)
    else:
        window = position.window
        ranked = await source.ranked_in(window)
    found: list[tuple[Hit, Window | None]] = []
    while True:
        found += [(hit, window) for hit in by_relevance(ranked) if position is None or _after(hit, position)]
        if len(found) >= need:
            return found[:need]
        after = position if position is not None and position.tier == 1 else None
        found += [(hit, window) for hit in await source.partial(window, after, need - len(found))]
        if len(found) >= need or window is None or window.down_to is None:
            return found
        window, ranked = await source.next_window(window.down_to)
        position = None


def by_relevance(hits: list[Hit]) -> list[Hit]:
    """Tier-0 hits in page order: score first (lower first), then newest first."""
    newest = sorted(hits, key=lambda hit: (hit.created_at, hit.id), reverse=True)
    return sorted(newest, key=lambda hit: hit.score)  # stable: ties stay newest first


def _after(hit: Hit, position: Position) -> bool:
    """Whether a tier-0 ``hit`` comes after ``position`` in the page order."""
    if position.tier != 0:
        return False  # every tier-0 hit comes before a tier-1 position
    if hit.score != position.score:
        return hit.score > position.score
    return (hit.created_at, hit.id) < (position.created_at, position.message_id)
