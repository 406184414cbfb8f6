"""Image processing in worker processes, each task under a memory cap and a time limit.

Decoding an image an attacker crafted can cost far more than its size says (a 196 KB GIF
of fifty 2000x2000 frames, a 16-bit PNG): ``media.images`` refuses what its headers already
show is too much, and this module bounds the rest. Each decode runs in a worker process:

- whose address space is capped (``RLIMIT_AS``): past it, allocations fail inside the worker
  (a ``MemoryError``, answered as an image too large) — the server's memory never grows;
- that is killed when its task overruns the time limit;
- that is replaced after it died or was killed, and after ``TASKS_PER_WORKER`` tasks, so what
  a worker's allocator kept from a large image is returned to the system.

Workers come from a ``forkserver`` with ``media.images`` preloaded: starting one is a fork
of a small, single-threaded process (never of the server with its threads and sockets).
There are ``workers`` single-process executors, one task each at a time: killing one
worker for one overrunning task never fails another user's upload.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from parley.media import images
from parley.media.sniff import MediaType

# A worker is replaced after this many tasks: long enough to amortise its start (a fork of
# the preloaded forkserver, a few milliseconds), short enough that memory a large decode
# left fragmented is returned soon.
TASKS_PER_WORKER = 16


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    workers: int
    memory_bytes: int  # the address space of one worker process
    timeout_seconds: float


class ImageTimedOut(images.ImageTooLarge):
    """Processing took longer than the time limit: the worker was killed."""


class ImageWorkerDied(images.ImageUnreadable):
    """The worker processing this image died (killed by the system, or crashed)."""


def _cap_memory(memory_bytes: int) -> None:
    """Worker initializer: cap the address space (allocations past it raise MemoryError)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _process(
    source: Path, media_type: MediaType, workdir: Path, max_pixels: int, max_total_pixels: int
) -> images.ProcessedImage:
    try:
        return images.process_image(
            source, media_type, workdir, max_pixels=max_pixels, max_total_pixels=max_total_pixels
        )
    except MemoryError:
        raise images.ImageTooLarge("decoding it needs more memory than a worker may use") from None


class ImageWorkers:
    def __init__(self, limits: WorkerLimits) -> None:
        self._limits = limits
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["parley.media.images"])
        self._context = context
        self._idle: asyncio.Queue[ProcessPoolExecutor] | None = None
        self._all: set[ProcessPoolExecutor] = set()

    def _new_executor(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=_cap_memory,
            initargs=(self._limits.memory_bytes,),
            max_tasks_per_child=TASKS_PER_WORKER,
        )
        self._all.add(executor)
        return executor

    def _queue(self) -> asyncio.Queue[ProcessPoolExecutor]:
        if self._idle is None:  # made in the running loop, on first use
            self._idle = asyncio.Queue()
            for _ in range(self._limits.workers):
                self._idle.put_nowait(self._new_executor())
        return self._idle

    async def process(
        self,
        source: Path,
        media_type: MediaType,
        workdir: Path,
        *,
        max_pixels: int,
        max_total_pixels: int,
    ) -> images.ProcessedImage:
        """``images.process_image`` in a worker; waits for a free one. Raises what it
        raises, ``ImageTooLarge`` for a worker out of memory or time, ``ImageWorkerDied``."""
        idle = self._queue()
        executor = await idle.get()
        loop = asyncio.get_running_loop()
        arguments = (source, media_type, workdir, max_pixels, max_total_pixels)
        try:
            try:
                future = loop.run_in_executor(executor, _process, *arguments)
            except BrokenProcessPool:
                # Its worker died while idle (killed by the system): this image never ran
                # there, so it gets a fresh worker instead of an error.
                executor = self._replace(executor)
                future = loop.run_in_executor(executor, _process, *arguments)
            return await asyncio.wait_for(future, self._limits.timeout_seconds)
        except TimeoutError:
            executor = self._replace(executor)
            raise ImageTimedOut(
                f"processing took longer than {self._limits.timeout_seconds:g} s"
            ) from None
        except BrokenProcessPool:
            executor = self._replace(executor)
            raise ImageWorkerDied("the worker processing it died") from None
        except asyncio.CancelledError:
            executor = self._replace(executor)  # the caller left: the work is wasted
            raise
        finally:
            idle.put_nowait(executor)

    def _replace(self, executor: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """Kill ``executor``'s worker (whatever it is doing) and make a fresh one."""
        _kill(executor)
        self._all.discard(executor)
        return self._new_executor()

    async def close(self) -> None:
        for executor in list(self._all):
            _kill(executor)
        self._all.clear()

    def worker_pids(self) -> Sequence[int]:
        """The live worker processes (for tests and diagnostics)."""
        return [pid for executor in self._all for pid in _processes(executor)]


def _processes(executor: ProcessPoolExecutor) -> list[int]:
    # The executor has no public list of its processes; killing an overrunning task's
    # worker needs them.
    processes = getattr(executor, "_processes", None) or {}
    return [int(pid) for pid in processes]


def _kill(executor: ProcessPoolExecutor) -> None:
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
