"""The session-check cache's rules, on its own clock: an entry lives ``ttl`` seconds, matches
only the user it was found open for, is evicted by a revocation (and a check read while one
was evicted is not remembered), stays bounded, and a ttl of 0 remembers nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parley.services.session_cache import SessionCache

USED = datetime(2026, 12, 6, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_ttl_seconds_for_its_own_user_only() -> None:
    clock = Clock()
    cache = SessionCache(1.0, clock=clock)
    assert cache.last_used_at("S1", "U1") is None
    cache.found_open("S1", "U1", USED, evictions_before=cache.evictions)
    assert cache.last_used_at("S1", "U1") == USED
    assert cache.last_used_at("S1", "U2") is None  # another user's token naming S1
    cache.used("S1", USED + timedelta(minutes=2))
    clock.now += 0.999
    assert cache.last_used_at("S1", "U1") == USED + timedelta(minutes=2)
    clock.now += 0.001
    assert cache.last_used_at("S1", "U1") is None  # a second old: read again


def test_a_revocation_evicts_and_voids_a_check_read_meanwhile() -> None:
    cache = SessionCache(60.0, clock=Clock())
    cache.found_open("S1", "U1", USED, evictions_before=cache.evictions)
    before = cache.evictions
    cache.evict(["S1", "S-unknown"])
    assert cache.last_used_at("S1", "U1") is None
    # A read begun before that revocation may have seen the session still open.
    cache.found_open("S1", "U1", USED, evictions_before=before)
    assert cache.last_used_at("S1", "U1") is None
    cache.found_open("S1", "U1", USED, evictions_before=cache.evictions)
    assert cache.last_used_at("S1", "U1") == USED


def test_bounded_and_off_at_zero() -> None:
    cache = SessionCache(60.0, max_entries=3, clock=Clock())
    for n in range(5):
        cache.found_open(f"S{n}", "U", USED, evictions_before=cache.evictions)
    assert [cache.last_used_at(f"S{n}", "U") for n in range(5)] == [None, None, USED, USED, USED]
    off = SessionCache(0.0, clock=Clock())
    off.found_open("S1", "U1", USED, evictions_before=off.evictions)
    assert off.last_used_at("S1", "U1") is None
