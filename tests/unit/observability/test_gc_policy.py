"""The server's garbage-collector policy (``parley.observability.gc_policy``): start-up
objects frozen, its thresholds and the pause metric while a server runs, and nothing of it
afterwards; the pause recorder (``metrics.GcPauses``) on its own."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from parley.observability.gc_policy import SERVER_THRESHOLDS, THRESHOLDS_APPLY, server_collection
from parley.observability.metrics import GC_PAUSE_BUCKETS, GcPauses


def recorder(clock: Callable[[], float] | None = None) -> tuple[GcPauses, CollectorRegistry]:
    pauses = GcPauses() if clock is None else GcPauses(clock)
    registry = CollectorRegistry()
    registry.register(pauses)
    return pauses, registry


def sample(registry: CollectorRegistry, suffix: str, generation: str, **labels: str) -> float:
    value = registry.get_sample_value(f"parley_gc_pause_seconds{suffix}", {"generation": generation, **labels})
    assert value is not None, f"no parley_gc_pause_seconds{suffix} for generation {generation}"
    return value


def test_while_a_server_runs_its_policy_holds_and_pauses_are_recorded() -> None:
    before = gc.get_threshold()
    pauses, registry = recorder()
    with server_collection(pauses):
        if THRESHOLDS_APPLY:
            assert gc.get_threshold() == SERVER_THRESHOLDS
        assert gc.get_freeze_count() > 0
        gc.collect(0)
        gc.collect(2)
        assert sample(registry, "_count", "0") >= 1
        assert sample(registry, "_count", "2") >= 1
        assert 0 < sample(registry, "_sum", "2") < 60
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    counted = sample(registry, "_count", "2")
    gc.collect(2)
    assert sample(registry, "_count", "2") == counted  # the callback left with the server


def test_two_servers_in_one_process_undo_it_only_when_the_last_stops() -> None:
    before = gc.get_threshold()
    first, first_registry = recorder()
    second, second_registry = recorder()
    with server_collection(first):
        with server_collection(second):
            gc.collect(1)
            assert sample(first_registry, "_count", "1") >= 1
            assert sample(second_registry, "_count", "1") >= 1
        if THRESHOLDS_APPLY:
            assert gc.get_threshold() == SERVER_THRESHOLDS  # the first still runs
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_pause_lands_in_its_bucket_and_every_series_exists_before_any() -> None:
    readings = iter([10.0, 10.003])  # a 3 ms pause: above the 2.5 ms bound, within 5 ms
    pauses, registry = recorder(lambda: next(readings))
    for generation in ("0", "1", "2"):
        assert sample(registry, "_count", generation) == 0  # exported before the first pause
        assert sample(registry, "_bucket", generation, le="+Inf") == 0
    pauses.callback("start", {"generation": 1})
    pauses.callback("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert 0.0025 in GC_PAUSE_BUCKETS and 0.005 in GC_PAUSE_BUCKETS
    assert sample(registry, "_bucket", "1", le="0.0025") == 0
    assert sample(registry, "_bucket", "1", le="0.005") == 1
    assert sample(registry, "_bucket", "1", le="+Inf") == 1
    assert sample(registry, "_sum", "1") == pytest.approx(0.003)
    assert sample(registry, "_count", "0") == 0


def test_a_stop_without_its_start_is_not_a_pause() -> None:
    # Added to gc.callbacks while another thread's collection ran: its stop comes first.
    pauses, registry = recorder()
    pauses.callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    pauses.callback("start", {"generation": 0})
    pauses.callback("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    pauses.callback("stop", {"generation": 0, "collected": 0, "uncollectable": 0})  # no second start
    assert sample(registry, "_count", "2") == 0
    assert sample(registry, "_count", "0") == 1
