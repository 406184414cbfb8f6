"""The ``JobQueue`` on Redis Streams with a consumer group (seed 003's pattern).

- ``enqueue`` is XADD: durable in Redis once it returns.
- Every node reads with XREADGROUP as its own consumer; a handled job is XACKed.
- A failed job is re-added later (a sorted set of delayed jobs, moved back by a Lua script
  when due) with its attempt count raised; after ``MAX_ATTEMPTS`` it goes to the
  dead-letter stream instead.
- A job whose consumer died (delivered, never acknowledged) is taken over with XAUTOCLAIM
  after ``claim_idle_seconds`` — so delivery is at least once, and handlers must be
  idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from parley.background import cancel_and_wait
from parley.ids import new_id
from parley.jobs.queue import MAX_ATTEMPTS, Handler, Job, QueueStats, retry_delay

log = logging.getLogger(__name__)

GROUP = "parley-workers"
READ_COUNT = 16
BLOCK_MS = 1000
STREAM_MAX_LENGTH = 100_000

# Moves due jobs from the delayed set back onto the stream, atomically (no double moves).
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local job = cjson.decode(member)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
    'id', job.id, 'kind', job.kind, 'payload', job.payload, 'attempt', job.attempt)
end
return #due
"""


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _delayed_member(job: Job) -> str:
    """A job as a member of the delayed set (what ``MOVE_DUE`` decodes); the id keeps two
    equal payloads apart."""
    return json.dumps(
        {"id": job.id, "kind": job.kind, "payload": json.dumps(job.payload), "attempt": job.attempt}
    )


def _decode(fields: dict[bytes, bytes]) -> Job:
    return Job(
        id=fields[b"id"].decode(),
        kind=fields[b"kind"].decode(),
        payload=json.loads(fields[b"payload"]),
        attempt=int(fields[b"attempt"]),
    )


class RedisJobQueue:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "parley:jobs",
        claim_idle_seconds: float = 60.0,
        retry_base_seconds: float = 1.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self._client = client
        self.stream = f"{prefix}:stream"
        self.delayed = f"{prefix}:delayed"
        self.dead = f"{prefix}:dead"
        self._consumer = _consumer_name()
        self._claim_idle_ms = int(claim_idle_seconds * 1000)
        self._retry_base = retry_base_seconds
        self._poll = poll_seconds
        self._handlers: dict[str, Handler] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._move_due: Any = client.register_script(MOVE_DUE)
        self._in_flight = 0

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, delay_seconds: float = 0.0
    ) -> str:
        job_id = new_id()
        if delay_seconds > 0:  # the delayed set, moved onto the stream when due
            job = Job(job_id, kind, payload or {})
            await self._client.zadd(self.delayed, {_delayed_member(job): time.time() + delay_seconds})
            return job_id
        await self._client.xadd(
            self.stream,
            {"id": job_id, "kind": kind, "payload": json.dumps(payload or {}), "attempt": 1},
            maxlen=STREAM_MAX_LENGTH,
            approximate=True,
        )
        return job_id

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def start(self) -> None:
        if self._tasks:
            return
        await self._ensure_group()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="jobs-read"),
            asyncio.create_task(self._maintenance_loop(), name="jobs-maintenance"),
        ]

    async def _read_loop(self) -> None:
        while True:
            try:
                batches: Any = await self._client.xreadgroup(
                    GROUP, self._consumer, {self.stream: ">"}, count=READ_COUNT, block=BLOCK_MS
                )
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost the group (restart without persistence)
                    await self._ensure_group()
                    continue
                raise
            except Exception:  # Redis unavailable: wait and retry, never crash the node
                log.warning("job queue cannot reach Redis; retrying", exc_info=True)
                await asyncio.sleep(self._poll)
                continue
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    await self._handle(entry_id, _decode(fields))

    async def _maintenance_loop(self) -> None:
        """Move due retries back, and take over jobs left by dead consumers."""
        while True:
            try:
                await self._move_due(keys=[self.delayed, self.stream], args=[time.time(), STREAM_MAX_LENGTH])
                _next, claimed, *_ = await self._client.xautoclaim(
                    self.stream, GROUP, self._consumer, self._claim_idle_ms, start_id="0-0", count=READ_COUNT
                )
                for entry_id, fields in claimed:
                    if fields:  # an entry trimmed from the stream comes back empty
                        await self._handle(entry_id, _decode(fields))
                    else:
                        await self._client.xack(self.stream, GROUP, entry_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job queue maintenance failed; retrying", exc_info=True)
            await asyncio.sleep(self._poll)

    async def _handle(self, entry_id: bytes, job: Job) -> None:
        self._in_flight += 1
        try:
            handler = self._handlers.get(job.kind)
            if handler is None:
                await self._dead_letter(job, "no handler")
            else:
                try:
                    await handler(job)
                except Exception as exc:
                    await self._retry_or_dead_letter(job, exc)
            # Acknowledged last: a crash before this line means the job runs again.
            await self._client.xack(self.stream, GROUP, entry_id)
        finally:
            self._in_flight -= 1

    async def _retry_or_dead_letter(self, job: Job, exc: Exception) -> None:
        if job.attempt >= MAX_ATTEMPTS:
            await self._dead_letter(job, repr(exc))
            return
        due = time.time() + retry_delay(job.attempt, self._retry_base)
        retry = Job(job.id, job.kind, job.payload, job.attempt + 1)
        await self._client.zadd(self.delayed, {_delayed_member(retry): due})

    async def _dead_letter(self, job: Job, reason: str) -> None:
        log.error("job dead-lettered", extra={"job_kind": job.kind, "reason": reason})
        await self._client.xadd(
            self.dead,
            {
                "id": job.id,
                "kind": job.kind,
                "payload": json.dumps(job.payload),
                "attempt": job.attempt,
                "reason": reason[:500],
            },
            maxlen=STREAM_MAX_LENGTH,
            approximate=True,
        )

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def stats(self) -> QueueStats:
        queued, pending = 0, 0
        try:
            for group in await self._client.xinfo_groups(self.stream):
                if group["name"] in (GROUP, GROUP.encode()):
                    queued = int(group.get("lag") or 0)
                    pending = int(group.get("pending") or 0)
        except ResponseError:
            pass  # no stream yet
        delayed = int(await self._client.zcard(self.delayed))
        dead = int(await self._client.xlen(self.dead))
        return QueueStats(queued=queued + delayed, in_flight=pending, dead=dead)
