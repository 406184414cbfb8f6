"""The server's garbage-collector policy (``parley.observability.gc_policy``): start-up
objects frozen, its thresholds and the pause metric while a server runs, and nothing of it
afterwards."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, Histogram

from parley.observability.gc_policy import SERVER_THRESHOLDS, server_collection


def pause_histogram() -> tuple[Histogram, CollectorRegistry]:
    registry = CollectorRegistry()
    return Histogram("pauses", "test", ["generation"], registry=registry), registry


def observed(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("pauses_count", {"generation": generation})
    return value or 0.0


def test_while_a_server_runs_its_policy_holds_and_pauses_are_observed() -> None:
    before = gc.get_threshold()
    assert before != SERVER_THRESHOLDS
    pauses, registry = pause_histogram()
    with server_collection(pauses):
        assert gc.get_threshold() == SERVER_THRESHOLDS
        assert gc.get_freeze_count() > 0
        gc.collect(0)
        gc.collect(2)
        assert observed(registry, "0") >= 1
        assert observed(registry, "2") >= 1
        total = registry.get_sample_value("pauses_sum", {"generation": "2"})
        assert total is not None and 0 < total < 60
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    counted = observed(registry, "2")
    gc.collect(2)
    assert observed(registry, "2") == counted  # the observer is gone with the server


def test_two_servers_in_one_process_undo_it_only_when_the_last_stops() -> None:
    before = gc.get_threshold()
    first, first_registry = pause_histogram()
    second, second_registry = pause_histogram()
    with server_collection(first):
        with server_collection(second):
            gc.collect(1)
            assert observed(first_registry, "1") >= 1 and observed(second_registry, "1") >= 1
        assert gc.get_threshold() == SERVER_THRESHOLDS  # the first still runs
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
