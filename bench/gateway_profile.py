"""Profiling a server under load: py-spy records collapsed stacks of the server during a
probe (or a fixed-rate step), and the busiest thread's top functions are ranked by own and
inclusive share of the samples (``gateway_bench.py --profile SIZE``)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway_output import RESULTS_DIR, log
from gateway_stand import Stand
from gateway_step import describe, run_step


async def profile_probe(
    stand: Stand, senders: list[tuple[int, str]], inflight: int, seconds: float,
    common: dict[str, Any], workdir: Path, rate: float = math.inf, warmup: float = 0.0,
) -> dict[str, Any]:
    """A closed-loop probe (or a step at ``rate``) with py-spy sampling the server; the top
    functions by own time."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found (pip install py-spy): no profile")
        return {}
    name = stand.target.name
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / f"profile-{name}-{common['size']}.txt"
    record_seconds = max(1, int(seconds) - 1)

    async def record() -> None:
        await asyncio.sleep(warmup)  # the closed loop's first round is not saturation yet
        # Collapsed stacks ("raw"): the table below is computed from them, and
        # flamegraph.pl or speedscope draw them.
        await asyncio.to_thread(
            subprocess.run,
            [spy, "record", "--pid", str(stand.server.pid), "--duration", str(record_seconds),
             "--rate", "200", "--threads", "--format", "raw", "--output", str(raw),
             *os.environ.get("BENCH_PYSPY_ARGS", "").split()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=record_seconds + 30, check=False,
        )

    step = await run_step(stand.server, stand.load, senders, target=name, rate=rate,
                          duration=seconds, inflight=inflight if math.isinf(rate) else 64,
                          during=record, warmup=warmup, **common)
    log("profiled " + describe(step))
    top = top_functions(raw) if raw.exists() else {}
    return {"step": vars(step), "raw": str(raw), "top": top}


def collapsed_stacks(raw: Path) -> dict[str, list[tuple[list[str], int]]]:
    """py-spy's collapsed stacks (``thread;frame;frame count`` a line), per thread: each
    stack's frames, outermost first (``func (path/to/file.py:12)``), and its samples."""
    per_thread: dict[str, list[tuple[list[str], int]]] = {}
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        per_thread.setdefault(thread, []).append((frames, int(count_text)))
    return per_thread


def busiest(per_thread: dict[str, list[tuple[list[str], int]]]) -> str:
    """The thread with the most samples (a server's event loop), or "" for none."""
    totals = {thread: sum(n for _, n in stacks) for thread, stacks in per_thread.items()}
    return max(totals, key=lambda t: totals[t]) if totals else ""


def top_functions(raw: Path, limit: int = 30) -> dict[str, Any]:
    """Own and inclusive sample shares per function, from py-spy's collapsed stacks, for
    the busiest thread (the event loop); and each thread's share of all samples."""
    per_thread = {
        thread: [([_short(f) for f in frames], count) for frames, count in stacks]
        for thread, stacks in collapsed_stacks(raw).items()
    }
    totals = {thread: sum(n for _, n in stacks) for thread, stacks in per_thread.items()}
    everything = sum(totals.values()) or 1
    main = busiest(per_thread)
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for frames, count in per_thread.get(main, []):
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    total = totals.get(main, 0) or 1

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        ordered = sorted(table.items(), key=lambda kv: -kv[1])[:limit]
        return [(name, round(100 * n / total, 1)) for name, n in ordered]

    threads = {}
    for thread, frames_list in per_thread.items():
        # A thread is named by what it runs: the outermost frames that are not threading's.
        sample_frames = max(frames_list, key=lambda fc: fc[1])[0]
        name = next((f for f in sample_frames if "threading.py" not in f and "runpy" not in f), thread)
        threads[f"{thread} {name}"] = round(100 * totals[thread] / everything, 1)
    return {
        "samples": everything,
        "threads_percent": threads,
        "main_thread": main,
        "own_percent": ranked(own),
        "inclusive_percent": ranked(inclusive),
    }


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else frame
