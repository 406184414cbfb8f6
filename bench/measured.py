"""The benchmark's accounting rules, apart from any socket so that tests can check them:

- a step that measured nothing (no accepted message, no delivery, no latency sample) is an
  error, raised with what was seen, never a row of zeros or a ratio over nothing;
- a repeated figure is reported as its spread — min / median / max — over the runs.

Why the first rule: a closed loop whose window is shorter than one round trip (a group of
1,000 queues two hundred thousand frames before the first ``ack`` comes back) counts no
``ack`` at all; the rates derived from that probe are then fractions of a message per
second, the steps built on them measure nothing, and a ratio computed from them looks like
a result. Failing the run is the only honest outcome.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

# Fewer than this many accepted messages, deliveries or latency samples in a step's window
# is "measured nothing": a rate or a percentile from a handful of events is noise.
MIN_EVENTS = 5


class NothingMeasured(RuntimeError):
    """A step's window held (almost) no events: its figures would mean nothing."""


@dataclass(frozen=True, slots=True)
class Counts:
    """What the load generator saw inside one step's measurement window."""

    label: str  # e.g. "parley group of 1,000 probe" — names the step in the error
    window_seconds: float
    sent: int
    accepted: int  # acks received inside the window
    deliveries: int  # message.created frames received inside the window
    latency_samples: int  # end-to-end latencies of messages sent inside the window
    errors: int = 0


def require_measured(counts: Counts, minimum: int = MIN_EVENTS) -> None:
    """Raise :class:`NothingMeasured` unless the window holds at least ``minimum`` accepted
    messages, deliveries and latency samples."""
    missing = [
        name
        for name, value in (
            ("accepted messages", counts.accepted),
            ("deliveries", counts.deliveries),
            ("latency samples", counts.latency_samples),
        )
        if value < minimum
    ]
    if counts.window_seconds <= 0:
        missing.append("window time")
    if missing:
        raise NothingMeasured(
            f"{counts.label}: the step measured nothing ({', '.join(missing)} below {minimum}): "
            f"{counts.window_seconds:.2f} s window, {counts.sent} sent, {counts.accepted} accepted, "
            f"{counts.deliveries} deliveries, {counts.latency_samples} latency samples, "
            f"{counts.errors} errors. A closed loop needs a window longer than one round trip "
            f"(in-flight messages × fan-out ÷ deliveries/s); an open-loop step needs a rate "
            f"above a few messages per window."
        )


@dataclass(frozen=True, slots=True)
class Spread:
    """min / median / max of a figure measured several times in one run."""

    low: float
    median: float
    high: float
    runs: int

    def text(self, digits: int = 2) -> str:
        return f"{self.low:.{digits}f} / {self.median:.{digits}f} / {self.high:.{digits}f}"

    def as_dict(self) -> dict[str, float | int]:
        return {"min": self.low, "median": self.median, "max": self.high, "runs": self.runs}


def spread(values: list[float]) -> Spread:
    """The spread of ``values``; an empty list is an error, not a zero."""
    if not values:
        raise NothingMeasured("no runs to take a min / median / max of")
    return Spread(min(values), statistics.median(values), max(values), len(values))


def ratio(numerator: float, denominator: float, label: str) -> float:
    """``numerator / denominator``, refusing a zero or negative baseline."""
    if denominator <= 0 or numerator < 0:
        raise NothingMeasured(f"{label}: no ratio of {numerator} to a baseline of {denominator}")
    return numerator / denominator
