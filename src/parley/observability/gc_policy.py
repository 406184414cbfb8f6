"""The cyclic garbage collector's policy while a server runs, and its pauses as a metric.

A collection stops every thread of the process for as long as it walks the objects of the
generations it collects. What a server builds before it takes traffic (modules, the app,
the services) lives as long as the process, so it is frozen out of the collector's sight.
What the traffic makes is the rest: about 130 tracked objects per open socket (coroutines,
futures, deques, the ASGI server's protocol objects). With 1,000 sockets a full collection
walked ~130,000 objects in 75-100 ms, and under a large fan-out the default thresholds
(700, 10, 10) ran one every few seconds: the tail of the delivery latencies measured there
(docs/benchmarks.md, round eight).

:data:`SERVER_THRESHOLDS` keeps CPython's young generations as they are (700, 10) and asks
for 100 middle-generation collections between full ones instead of 10 (besides CPython's
own rule: only once the objects promoted since the last full collection reach a quarter of
those it kept). In a benchmark run of groups of 10, 100 and 1,000 that meant 3 full
collections instead of 8-9 (160-170 ms of pauses instead of 550-600); each takes as long.
Cyclic garbage that reached the oldest generation waits longer to be freed. Tried and not
kept: a larger youngest generation (5,000, 5, 50) ended the full collections of a benchmark
run altogether but cost small conversations more CPU and a longer latency tail than the
pauses it saved them.

``parley_gc_pause_seconds{generation}`` records every collection's pause, so a latency
tail can be laid beside the collector's.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Histogram

SERVER_THRESHOLDS = (700, 10, 100)

_lock = threading.Lock()
_active = 0  # servers running in this process (tests run several, one after another)
_previous_thresholds: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def server_collection(pauses: Histogram) -> Iterator[None]:
    """While the block runs: everything made so far frozen, :data:`SERVER_THRESHOLDS`,
    and each collection's pause observed in ``pauses`` (labelled by generation). Undone
    when the last such block of the process exits."""
    global _active, _previous_thresholds
    observe = _pause_observer(pauses)
    with _lock:
        if _active == 0:
            _previous_thresholds = gc.get_threshold()
        _active += 1
        gc.freeze()
        gc.set_threshold(*SERVER_THRESHOLDS)
        gc.callbacks.append(observe)
    try:
        yield
    finally:
        with _lock:
            gc.callbacks.remove(observe)
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_previous_thresholds)
                gc.unfreeze()


def _pause_observer(pauses: Histogram) -> Callable[[str, dict[str, Any]], None]:
    """A ``gc.callbacks`` entry: called at the start and the stop of every collection, in
    the thread that triggered it. Collections never overlap (the collector holds the GIL
    and is not reentrant), so one start time is enough."""
    by_generation = [pauses.labels(str(generation)) for generation in range(3)]
    started = [0.0]

    def observe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    return observe
