"""CPU per send of four steps of the gateway's send path, each on its own (no server, no
socket), in this thread's CPU time:

- **reading**: a ``message.send`` call frame's text read into the frame and its params, as
  the connection reads it (``Handlers.read`` then ``Handlers.parse``; before round thirteen
  ``parse_frame`` then ``Handlers.parse``);
- **encoding**: the ``message.created`` envelope of a new message and its sender's ``ack``
  (``created_event``, ``envelope_for``, the ack's data and frame);
- **answering**: a connection queues 64 pipelined calls, their work resolves at once (a
  batch committing) and the answers go out in order, through the connection's outbox to a
  socket that takes every frame (uvloop, as ``parley serve``);
- **rate limits**: a send's two buckets (sender, conversation) on the memory limiter and,
  with ``--redis URL``, on Redis (there also the wall time: a round trip each).

Compare two checkouts (round eleven's or later) in the same minutes by running it on each
in turn: ``PYTHONPATH=<checkout>/src python bench/send_path_bench.py``. Min / median / max
of ``--runs`` runs of each step.

    python bench/send_path_bench.py [--runs 7] [--redis redis://127.0.0.1:6379/0]

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import uvloop

from parley.gateway.call_answers import PendingAnswer
from parley.gateway.connection import Connection
from parley.gateway.connection_host import ConnectionLimits
from parley.gateway.handlers import Handlers, Queued
from parley.gateway.outbox import Flusher
from parley.gateway.protocol import ack_frame, parse_frame
from parley.gateway.router import envelope_for
from parley.security.ratelimit import MemoryRateLimiter, Rate, RateLimiter
from parley.services.message_records import Message
from parley.services.message_sending import created_event

ANSWERS_PER_ROUND = 64
UNLIMITED = Rate(per_second=1e9, burst=10**9)


def summary(name: str, figures: list[float], unit: str = "us of CPU per send") -> None:
    print(f"{name:34s} min {min(figures):7.2f} / median {statistics.median(figures):7.2f} / "
          f"max {max(figures):7.2f} {unit}")


# --- reading


def reading_run(frames: int = 20_000) -> float:
    read = getattr(Handlers, "read", parse_frame)  # one pass from round thirteen on
    texts = [
        f'{{"op":"call","ref":"{number}","method":"message.send","params":{{"conversation_id":'
        f'"01JG{number % 100:022d}","content":"closed loop {number} {"x" * 80}","client_msg_id":'
        f'"cl.{number}"}}}}'
        for number in range(frames)
    ]
    started = time.thread_time()
    for text in texts:
        Handlers.parse(read(text))
    return (time.thread_time() - started) / frames * 1e6


# --- encoding


def new_message(number: int) -> Message:
    return Message(
        id=f"01JF{number:022d}", conversation_id=f"01JG{number % 100:022d}", seq=number,
        version_seq=number, sender_id=f"01JH{number % 100:022d}", kind="text",
        content=f"closed loop {number} " + "x" * 80, client_msg_id=f"cl.{number}", reply_to_id=None,
        mentions=(), system_event=None, created_at=datetime.now(UTC), edited_at=None, deleted_at=None,
    )  # fmt: skip


def ack_data(message: Message) -> Any:
    fields = {"message": message.to_public(), "created": True}
    if not hasattr(message, "public_text"):  # before: the dict, encoded again for the ack
        return fields
    from parley.wire.json_text import object_text

    return object_text(fields, {"message": message.public_text()})


def encoding_run(sends: int = 20_000) -> float:
    spent = 0.0
    for number in range(sends):
        message = new_message(number)
        started = time.thread_time()
        envelope_for(created_event(message))
        ack_frame(str(number), ack_data(message))
        spent += time.thread_time() - started
    return spent / sends * 1e6


# --- answering


class Socket:
    """Takes every frame at once."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_frames(self, frames: Sequence[str]) -> None:
        self.sent += len(frames)

    def write_now(self, frames: Sequence[str]) -> bool:
        self.sent += len(frames)
        return True

    async def close(self, code: int, reason: str) -> None:
        pass

    async def receive(self) -> Any:
        await asyncio.Event().wait()


def queue_answer(connection: Connection, ref: str, work: asyncio.Future[bool]) -> None:
    def answer(result: bool) -> dict[str, Any]:
        return {"ok": result}

    connection._queue_answer(PendingAnswer(ref, "message.send", Queued(work, answer)))


async def answering_run(rounds: int = 300) -> float:
    limits = ConnectionLimits(
        identify_timeout_seconds=10, heartbeat_interval_seconds=30, max_frame_bytes=1 << 20,
        outbox_limit=100_000, close_timeout_seconds=1, frame_rate=UNLIMITED, rate_limit_strikes=10,
    )  # fmt: skip
    node: Any = SimpleNamespace(
        limits=limits, metrics=SimpleNamespace(delivery=SimpleNamespace(observe=print)), flusher=Flusher()
    )
    socket = Socket()
    connection = Connection(socket, node, "bench")
    connection._outbox.start(socket)
    loop = asyncio.get_running_loop()
    spent = 0.0
    for _ in range(rounds):
        work = [loop.create_future() for _ in range(ANSWERS_PER_ROUND)]
        started = time.thread_time()
        for number, future in enumerate(work):
            queue_answer(connection, str(number), future)
        await asyncio.sleep(0)
        for future in work:
            future.set_result(True)
        await connection._answered()
        while connection._outbox.depth:
            await asyncio.sleep(0)
        spent += time.thread_time() - started
    assert socket.sent == rounds * ANSWERS_PER_ROUND, socket.sent
    return spent / (rounds * ANSWERS_PER_ROUND) * 1e6


# --- rate limits


async def limit_send(limiter: RateLimiter, number: int) -> None:
    hits = ((f"send:user:{number % 100}", UNLIMITED), (f"send:conversation:{number % 100}", UNLIMITED))
    if hasattr(limiter, "hit_many"):
        decision = await limiter.hit_many(hits)
        assert decision.allowed
        return
    for key, rate in hits:  # before: a hit (a script, a round trip) per bucket
        assert (await limiter.hit(key, rate)).allowed


async def limits_run(limiter: RateLimiter, sends: int) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    for number in range(sends):
        await limit_send(limiter, number)
    return (time.thread_time() - cpu) / sends * 1e6, (time.perf_counter() - wall) / sends * 1e6


async def redis_limiter(url: str) -> tuple[RateLimiter, Callable[[], Awaitable[None]]]:
    import redis.asyncio as redis

    from parley.security.ratelimit_redis import RedisRateLimiter

    client = redis.Redis.from_url(url)
    prefix = f"parley-bench:{time.time_ns()}:"

    async def close() -> None:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    return RedisRateLimiter(client, prefix=prefix), close


async def run(runs: int, redis_url: str | None) -> None:
    summary("reading (frame + params)", [reading_run() for _ in range(runs)])
    summary("encoding (event + ack)", [encoding_run() for _ in range(runs)])
    summary("answering (per call)", [await answering_run() for _ in range(runs)])
    memory = [await limits_run(MemoryRateLimiter(), 50_000) for _ in range(runs)]
    summary("rate limits, memory", [cpu for cpu, _ in memory])
    if redis_url:
        limiter, close = await redis_limiter(redis_url)
        try:
            remote = [await limits_run(limiter, 3_000) for _ in range(runs)]
        finally:
            await close()
        summary("rate limits, Redis", [cpu for cpu, _ in remote])
        summary("rate limits, Redis (wall)", [wall for _, wall in remote], "us of wall time per send")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--redis", metavar="URL", help="also the Redis limiter, on this server")
    args = parser.parse_args()
    uvloop.run(run(args.runs, args.redis))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
