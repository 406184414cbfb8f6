"""``bench/connect_cost_bench.py`` reads each thread's CPU from ``/proc`` (``procs``): a stat
line whose command name holds spaces and parentheses still gives its utime + stime, this
process's own threads are all found, and a run that identified nobody is an error, not a
ratio."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tests.support.paths import REPO

sys.path.insert(0, str(REPO / "bench"))

from connect_cost_bench import ConnectCost, thread_cpu  # noqa: E402
from measured import NothingMeasured  # noqa: E402
from procs import CLOCK_TICKS, stat_cpu_seconds  # noqa: E402


def test_a_stat_line_with_an_awkward_name_gives_utime_plus_stime() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    line = b"4242 (a (weird) name) S 1 1 1 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 1 0"
    assert stat_cpu_seconds(line) == pytest.approx(300 / CLOCK_TICKS)


def test_every_thread_of_this_process_is_found() -> None:
    started, stop = threading.Event(), threading.Event()

    def spin() -> None:
        started.set()
        stop.wait(10)

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        assert started.wait(10)
        found = thread_cpu(os.getpid())
        assert os.getpid() in found and worker.native_id in found
        assert all(cpu >= 0 for cpu in found.values())
    finally:
        stop.set()
        worker.join()


def test_a_run_that_identified_nobody_measured_nothing() -> None:
    with pytest.raises(NothingMeasured):
        ConnectCost(connects=0, failed=1000, seconds=1.0, loop_cpu=0.5, other_cpu=0.1).as_dict()
    with pytest.raises(NothingMeasured):
        ConnectCost(connects=10, failed=0, seconds=0.0, loop_cpu=0.5, other_cpu=0.1).rate()
    cost = ConnectCost(connects=1000, failed=0, seconds=2.0, loop_cpu=0.5, other_cpu=0.25)
    assert cost.as_dict() == {
        "connects": 1000, "failed": 0, "connects_per_s": 500.0,
        "cpu_ms": 0.75, "event_loop_ms": 0.5, "other_threads_ms": 0.25,
    }  # fmt: skip
