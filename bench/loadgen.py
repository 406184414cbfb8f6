"""The load generator: virtual users on bare asyncio transports, speaking the gateway protocol.

Thousands of sockets per process, several processes: the harness (``gateway_bench.py``)
starts them with :class:`LoadGenerator` and gives them commands over a pipe — connect these
users, run a step (these senders, this rate, this long), reconnect everyone at once, close —
and adds up what they answer: counts and latency histograms.

The parts, each with its details in its own docstring:

- ``loadgen_virtual_user.py``: :class:`Client`, one virtual user — an ``asyncio.Protocol``
  driving the ``websockets`` library's sans-I/O ``ClientProtocol``, with no task, queue or
  reader per socket, so that the generator stays cheaper than the servers it measures;
- ``loadgen_worker.py``: :class:`Worker`, one process with one event loop and many clients,
  running the commands and timing every delivery end to end;
- ``loadgen_histogram.py``: the latency histograms (2 % buckets), merged across workers for
  p50 / p95 / p99.

This module is the harness's side; ``Worker``, ``merge`` and ``summary`` are importable from
here too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from loadgen_histogram import merge, summary
from loadgen_worker import Worker, worker_main

__all__ = ["LoadGenerator", "Worker", "merge", "summary"]


class LoadGenerator:
    """``processes`` worker processes, each with its share of the virtual users."""

    def __init__(self, uri: str, processes: int, *, deflate: bool = True, cores: list[int] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.uri = uri
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        # When each worker's first round of a closed loop came back (see Worker._closed_loop).
        rounds = context.Array("q", processes, lock=False)
        for index in range(processes):
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main, args=(child, index, uri, deflate, cores, rounds), daemon=True
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def worker_of(self, key: int) -> int:
        return key % len(self.pipes)

    def send(self, index: int, command: dict[str, Any]) -> None:
        self.pipes[index].send(command)

    async def receive(self, index: int, timeout: float = 600.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        pipe = self.pipes[index]
        ready = await loop.run_in_executor(None, pipe.poll, timeout)
        if not ready:
            raise TimeoutError(f"load worker {index} did not answer in {timeout} s")
        result: dict[str, Any] = pipe.recv()
        if "exception" in result:
            raise RuntimeError(f"load worker {index}: {result['exception']}")
        return result

    async def broadcast(self, commands: list[dict[str, Any]], timeout: float = 600.0) -> list[dict[str, Any]]:
        """Send one command per worker, then collect every answer."""
        for index, command in enumerate(commands):
            self.send(index, command)
        return [await self.receive(index, timeout) for index in range(len(commands))]

    def split(self, items: list[Any], key: Any = lambda item: item[0]) -> list[list[Any]]:
        """Items (keyed by client key) for each worker."""
        shares: list[list[Any]] = [[] for _ in self.pipes]
        for item in items:
            shares[self.worker_of(key(item))].append(item)
        return shares

    async def connect(
        self, users: list[tuple[int, str]], *, concurrency: int = 64, timeout: float = 30.0, retry_seconds: float = 0.0
    ) -> dict[str, Any]:
        retry_until = time.monotonic() + retry_seconds
        shares = self.split(users)
        per_worker = max(0, concurrency // len(self.pipes)) if concurrency else 0
        results = await self.broadcast(
            [
                {"cmd": "connect", "users": share, "concurrency": per_worker, "timeout": timeout, "retry_until": retry_until}
                for share in shares
            ]
        )
        times = sorted(t for r in results for t in r["ready_after"])
        return {
            "ok": sum(r["ok"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "attempts": sum(r["attempts"] for r in results),
            "seconds": max(r["seconds"] for r in results),
            "ready_after": times,
            "last_error": next((r["last_error"] for r in results if r["last_error"]), None),
        }

    async def close_all(self) -> None:
        await self.broadcast([{"cmd": "close"} for _ in self.pipes], timeout=60)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send({"cmd": "exit"})
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
