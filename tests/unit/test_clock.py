"""Timestamps on the wire: RFC 3339, milliseconds, ``Z``, whatever zone the value was in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from parley.clock import isoformat


def _reference(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_isoformat_writes_what_the_standard_library_writes_for_any_instant_and_zone() -> None:
    rng = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-3, minutes=-30))]
    edges = [
        datetime(1, 1, 2, 12, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 0, 0, 999, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 0, 0, 1000, tzinfo=UTC),
    ]
    randoms = [datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**16)) for _ in range(5_000)]
    for value in edges + randoms:
        for zone in zones:
            local = value.astimezone(zone)
            assert isoformat(local) == _reference(local)


def test_isoformat_keeps_four_digit_years_and_truncates_to_milliseconds() -> None:
    assert isoformat(datetime(7, 2, 3, 4, 5, 6, 789_999, tzinfo=UTC)) == "0007-02-03T04:05:06.789Z"
