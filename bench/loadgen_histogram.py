"""Latency histograms of the load generator: log-scale buckets 2 % wide over microseconds,
one increment per delivery (cheap enough for every frame), merged across workers by adding
the counts; p50 / p95 / p99 are read off the merged histogram to within a bucket's width."""

from __future__ import annotations

import math

HIST_BASE = 1.02  # bucket width: 2 %
_LOG_BASE = math.log(HIST_BASE)
HIST_BUCKETS = 1200  # 1.02 ** 1200 µs is about 6 hours: nothing overflows


def bucket(micros: int) -> int:
    if micros < 1:
        return 0
    index = int(math.log(micros) / _LOG_BASE)
    return index if index < HIST_BUCKETS else HIST_BUCKETS - 1


def new_histogram() -> list[int]:
    return [0] * HIST_BUCKETS


def merge(histograms: list[list[int]]) -> list[int]:
    return [sum(column) for column in zip(*histograms, strict=True)] if histograms else new_histogram()


def percentile_ms(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in milliseconds, to within the 2 % bucket width."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return round(HIST_BASE ** (index + 0.5) / 1000, 3)
    return None


def summary(histogram: list[int]) -> dict[str, float | int | None]:
    return {
        "count": sum(histogram),
        "p50_ms": percentile_ms(histogram, 0.50),
        "p95_ms": percentile_ms(histogram, 0.95),
        "p99_ms": percentile_ms(histogram, 0.99),
        "max_ms": percentile_ms(histogram, 1.0),
    }
