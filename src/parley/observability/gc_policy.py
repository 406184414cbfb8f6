"""The cyclic garbage collector's policy while a server runs, and its pauses as a metric.

A collection stops every thread of the process for as long as it walks the objects of the
generations it collects. What a server builds before it takes traffic (modules, the app,
the services) lives as long as the process, so it is frozen out of the collector's sight.
What the traffic makes is the rest: about 110 tracked objects per open socket (coroutines,
futures, deques, the ASGI server's protocol objects, the handshake's headers). With 1,000
sockets a full collection walks ~120,000 objects in 40-55 ms, and whichever messages were
in flight then wait for it: the tail of the delivery latencies (docs/benchmarks.md, rounds
eight and ten).

A full collection is seldom needed to free memory. A closed socket is freed by reference
counting alone: 1,500 sockets opened, identified and closed, then a full collection found
nothing to free. At saturation a full collection found 130-350 unreachable objects.
:data:`SERVER_THRESHOLDS` therefore keeps CPython's young generations as they are (700, 10)
and asks for 1,000 middle-generation collections between full ones instead of 10: at
saturation about one full collection every 100 s instead of every few seconds (besides
CPython's own rule: only once the objects promoted since the last full collection reach a
quarter of those it kept). Cyclic garbage that reached the oldest generation waits that much
longer: a few thousand objects at saturation.

Tried and not kept:
- A larger youngest generation (5,000, 5, 50) ended the full collections of a benchmark run
  altogether, but cost small conversations more CPU and a longer latency tail than the
  pauses it saved them.
- Running the full collections at quiet moments instead (whenever the process had used under
  a tenth of a core for two seconds). It moved their CPU into whatever else the machine ran
  then: in the benchmark, into the floor's own steps on the shared core, whose p99 rose
  2-4-fold.

From 3.14 CPython's collector may be incremental, where the third threshold means nothing:
there the thresholds are left as they are.

``parley_gc_pause_seconds{generation}`` (``metrics.GcPauses``) records every collection's
pause, so a latency tail can be laid beside the collector's.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from parley.observability.metrics import GcPauses

SERVER_THRESHOLDS = (700, 10, 1_000)
# Where the thresholds mean what SERVER_THRESHOLDS assumes (see the module's docstring).
THRESHOLDS_APPLY = sys.version_info < (3, 14)

_lock = threading.Lock()
_active = 0  # servers running in this process (tests run several, one after another)
_previous_thresholds: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def server_collection(pauses: GcPauses) -> Iterator[None]:
    """While the block runs: everything made so far frozen, :data:`SERVER_THRESHOLDS`,
    and each collection's pause recorded in ``pauses``. Undone when the last such block of
    the process exits."""
    global _active, _previous_thresholds
    with _lock:
        if _active == 0:
            _previous_thresholds = gc.get_threshold()
        _active += 1
        gc.freeze()
        if THRESHOLDS_APPLY:
            gc.set_threshold(*SERVER_THRESHOLDS)
        gc.callbacks.append(pauses.callback)
    try:
        yield
    finally:
        with _lock:
            gc.callbacks.remove(pauses.callback)
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_previous_thresholds)
                gc.unfreeze()
