"""The session-check cache's rules, on its own clock: an entry lives ``ttl`` seconds from
when the database was asked, matches only the user it was found open for, is evicted by a
revocation (and a check read while one was evicted is not remembered), expired entries and
the oldest past the bound leave, and a ttl of 0 remembers nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parley.services.session_cache import SessionCache

USED = datetime(2026, 12, 6, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def remember(cache: SessionCache, session_id: str, user_id: str, *, evictions: int | None = None) -> None:
    asked_at = cache.now()
    cache.found_open(
        session_id,
        user_id,
        USED,
        asked_at=asked_at,
        evictions_before=cache.evictions if evictions is None else evictions,
    )


def test_an_entry_lives_ttl_seconds_for_its_own_user_only() -> None:
    clock = Clock()
    cache = SessionCache(1.0, clock=clock)
    assert cache.last_used_at("S1", "U1") is None
    remember(cache, "S1", "U1")
    assert cache.last_used_at("S1", "U1") == USED
    assert cache.last_used_at("S1", "U2") is None  # another user's token naming S1
    cache.used("S1", USED + timedelta(minutes=2))
    clock.now += 0.999
    assert cache.last_used_at("S1", "U1") == USED + timedelta(minutes=2)
    clock.now += 0.001
    assert cache.last_used_at("S1", "U1") is None  # a second old: read again


def test_the_age_counts_from_when_the_database_was_asked() -> None:
    clock = Clock()
    cache = SessionCache(1.0, clock=clock)
    asked_at = cache.now()
    clock.now += 0.8  # a slow read
    cache.found_open("S1", "U1", USED, asked_at=asked_at, evictions_before=cache.evictions)
    clock.now += 0.2
    assert cache.last_used_at("S1", "U1") is None


def test_a_revocation_evicts_and_voids_a_check_read_meanwhile() -> None:
    cache = SessionCache(60.0, clock=Clock())
    remember(cache, "S1", "U1")
    before = cache.evictions
    cache.evict(["S1", "S-unknown"])
    assert cache.last_used_at("S1", "U1") is None
    # A read begun before that revocation may have seen the session still open.
    remember(cache, "S1", "U1", evictions=before)
    assert cache.last_used_at("S1", "U1") is None
    remember(cache, "S1", "U1")
    assert cache.last_used_at("S1", "U1") == USED


def test_expired_and_oldest_entries_leave_and_zero_is_off() -> None:
    clock = Clock()
    cache = SessionCache(60.0, max_entries=3, clock=clock)
    for n in range(5):
        remember(cache, f"S{n}", "U")
    assert [cache.last_used_at(f"S{n}", "U") for n in range(5)] == [None, None, USED, USED, USED]
    clock.now += 61
    remember(cache, "S9", "U")  # the expired ones leave as it comes in
    assert len(cache._entries) == 1  # noqa: SLF001 - the bound is the point of this test
    off = SessionCache(0.0, clock=Clock())
    remember(off, "S1", "U1")
    assert off.last_used_at("S1", "U1") is None
