"""The benchmark's accounting (``bench/measured.py``, ``bench/gateway_fanout.py``): a step
that measured nothing fails the run loudly, and a repeated figure is reported as its
min / median / max. Pure functions on made-up counts: no server, no timing asserted."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.support.paths import REPO

BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

from gateway_fanout import summarise_fanout  # noqa: E402
from gateway_step import Step  # noqa: E402
from measured import Counts, NothingMeasured, ratio, require_measured, spread  # noqa: E402
from report import fanout_tables, headline  # noqa: E402


def counts(**changes: Any) -> Counts:
    base = Counts(label="parley group of 1,000 probe", window_seconds=1.5, sent=200, accepted=150,
                  deliveries=150_000, latency_samples=150_000)
    return Counts(**(vars_of(base) | changes))


def vars_of(value: Counts) -> dict[str, Any]:
    return {name: getattr(value, name) for name in Counts.__slots__}


def test_a_step_with_counts_passes() -> None:
    require_measured(counts())


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        # The group of 1,000 as it was reported: deliveries, but not one ack in the window.
        ({"accepted": 0}, "accepted messages"),
        ({"deliveries": 0, "latency_samples": 0}, "deliveries"),
        ({"latency_samples": 0}, "latency samples"),
        ({"accepted": 0, "deliveries": 0, "latency_samples": 0, "sent": 0}, "accepted messages"),
        ({"accepted": 2}, "accepted messages"),  # a handful is noise, not a rate
        ({"window_seconds": 0.0}, "window time"),
    ],
)
def test_an_empty_step_fails_loudly(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(NothingMeasured) as caught:
        require_measured(counts(**changes))
    message = str(caught.value)
    assert "parley group of 1,000 probe" in message and "measured nothing" in message
    assert named in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.51, 0.84, 0.73], (0.51, 0.73, 0.84)),
        ([2.0, 1.0, 3.0], (1.0, 2.0, 3.0)),
        ([0.5, 0.5, 0.5], (0.5, 0.5, 0.5)),
        ([1.0, 4.0], (1.0, 2.5, 4.0)),  # an even count: the mean of the middle two
        ([0.7], (0.7, 0.7, 0.7)),
    ],
)
def test_spread_is_min_median_max(values: list[float], expected: tuple[float, float, float]) -> None:
    result = spread(values)
    assert (result.low, result.median, result.high) == pytest.approx(expected)
    assert result.runs == len(values)
    assert result.as_dict()["median"] == pytest.approx(expected[1])


def test_spread_of_nothing_and_ratio_over_nothing_fail() -> None:
    with pytest.raises(NothingMeasured):
        spread([])
    with pytest.raises(NothingMeasured):
        ratio(109_588.0, 0.0, "group of 1,000")
    assert ratio(50.0, 100.0, "x") == pytest.approx(0.5)


def step(target: str, kind: str, deliveries: float, run: int = 1, rate: float | None = None,
         p99: float | None = 10.0) -> Step:
    latency = {"count": 100, "p50_ms": 1.0, "p95_ms": 5.0, "p99_ms": p99, "max_ms": 20.0}
    return Step(
        target=target, size="100", kind=kind, offered_rate=rate, fanout=100, duration=1.0,
        accepted_per_s=deliveries / 100, deliveries_per_s=deliveries, latency=latency,
        ack_latency=latency, server_cpu=0.9, server_rss_mb=100.0, load_cpu=0.5, sent=1000,
        errors=0, unacked=0, disconnects=0, run=run,
    )


def test_the_fanout_ratio_is_per_repetition_and_spread() -> None:
    steps = [
        step("parley", "probe", 50_000, run=1), step("floor", "probe", 100_000, run=1),
        step("parley", "probe", 90_000, run=2), step("floor", "probe", 100_000, run=2),
        step("parley", "probe", 60_000, run=3), step("floor", "probe", 50_000, run=3),
        step("parley", "rate", 33_000, rate=330.0), step("floor", "rate", 33_000, rate=330.0),
        # An open-loop step with more deliveries than any probe must not stand for
        # saturation (taking the best step of all made ratios above 1).
        step("parley", "rate", 400_000, rate=700.0), step("floor", "rate", 70_000, rate=700.0),
    ]
    [row] = summarise_fanout(steps)
    assert row["ratios"] == pytest.approx([0.5, 0.9, 1.2])
    assert (row["ratio_min"], row["ratio"], row["ratio_max"]) == pytest.approx((0.5, 0.9, 1.2))
    assert row["parley_deliveries_per_s"] == pytest.approx(60_000)  # the median probe
    assert row["floor_deliveries_per_s"] == pytest.approx(100_000)
    assert row["half_rate"] == pytest.approx(330.0)  # nearest half of the median 600 msgs/s
    assert row["runs"] == 3
    # Every server at 0.9 of its core here: per CPU-second, the same ratios.
    assert row["ratio_per_cpu"]["median"] == pytest.approx(0.9)
    assert "0.50 / **0.90** / 1.20" in "\n".join(headline({"gateway": {"fanout": {"summary": [row]}}}))
    assert any("0.50 / **0.90** / 1.20" in line for line in fanout_tables({"summary": [row], "steps": [
        vars(s) for s in steps]}))


def test_a_size_without_a_floor_probe_fails() -> None:
    with pytest.raises(NothingMeasured):
        summarise_fanout([step("parley", "probe", 50_000)])
    with pytest.raises(NothingMeasured):
        summarise_fanout([step("parley", "probe", 50_000), step("floor", "probe", 0.0)])


def test_a_probe_keeps_a_bounded_number_of_deliveries_in_flight() -> None:
    from gateway_modes import MODES

    short = MODES["short"]
    group = [(key, "C") for key in range(0, 1000, 10)]  # 100 senders spread over 1,000
    assert short.probe_senders(group, 100) == group  # 100 × 2 × 100 = 20,000: all of them
    few = short.probe_senders(group, 1000)
    assert len(few) == 10 and few[0] == (0, "C") and few[-1] == (900, "C")  # spread evenly
    pairs = [(2 * i, f"D{i}") for i in range(100)]
    assert short.probe_senders(pairs, 2) == pairs


def test_the_closed_loop_is_reported_beside_the_probe() -> None:
    from report import closed_loop_tables

    outcome = {"workload": "group100", "senders": 100, "inflight": 2, "fanout": 100, "window_s": 3.0,
               "acked_per_s": 900.0, "committed_per_s": 910.0, "deliveries_per_s": 90_000.0,
               "server_cpu": 0.98, "load_cpu": 0.6, "errors": 0, "error_samples": []}
    probe = {"size": "100", "parley_msgs_per_s": 600.0, "parley_deliveries_per_s": 60_000.0, "probe_senders": 100,
             "parley_deliveries_per_cpu_second": 75_000.0}
    result = {"closed_loop": {"warmup_s": 1.5, "outcomes": [outcome, outcome | {"workload": "dm"}]},
              "gateway": {"fanout": {"summary": [probe]}}}
    text = "\n".join(closed_loop_tables(result))
    assert "| group of 100 | 100 | 900 | 910 | 90,000 |" in text and "**1.50**" in text
    assert "| 1.22 |" in text  # 90,000 / 0.98 against 75,000 per CPU-second
    assert "| direct messages |" in text  # no probe of direct messages in this result: no ratio
    assert text.count("| – |") >= 1
