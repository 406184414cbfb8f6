"""``parley serve --workers N``: with Redis the workers are N nodes on one host and act as
one server (proved by Redis seeing two subscribers to one conversation's channel, and
everyone receiving everything); without Redis the server says at start that real-time
delivery will not cross workers."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path

import redis.asyncio as redis

from tests.support.free_ports import free_port
from tests.support.gateway_helpers import EventLog, new_user, open_log, server_env
from tests.support.redis_fixtures import REDIS_URL
from tests.support.scaleout_helpers import eventually
from tests.support.server_process import ServerProcess

WARNING = "workers without PARLEY_REDIS_URL: real-time delivery does not cross workers"


async def test_workers_on_redis_act_as_one_server(
    tmp_path: Path, empty_postgres_url: str, redis_client: redis.Redis
) -> None:
    prefix = f"workers-{secrets.token_hex(4)}"
    env = server_env(
        tmp_path, empty_postgres_url, workers=2, redis_url=REDIS_URL, redis_key_prefix=prefix
    )
    server = await asyncio.to_thread(ServerProcess(free_port(), env, tmp_path).start)
    people = []
    logs: list[EventLog] = []
    try:
        assert WARNING not in server.log()
        people = [await new_user(server.base_url, f"worker{n}") for n in range(6)]
        group = await people[0].create_group("Workers", [p.user_id for p in people[1:]])
        channel = f"{prefix}:bus:conversation:{group['id']}"

        async def subscribers() -> int:
            [(_, count)] = await redis_client.pubsub_numsub(channel)
            return int(count)

        # The kernel hands connections to whichever worker accepts first; keep opening
        # sessions (more devices of the same people if need be) until both workers have
        # one in the group. Bounded.
        for attempt in range(20):
            logs.append(await open_log(people[attempt % len(people)], auto_delivered=False))
            if await subscribers() == 2:
                break
        await eventually(subscribers, lambda n: n == 2, timeout=5, what="two workers subscribed")

        for number, log in enumerate(logs):
            await log.session.send_message(group["id"], f"from session {number}")
        expected = {f"from session {number}" for number in range(len(logs))}
        for log in logs:
            await log.wait_for(
                lambda _, log=log: expected
                <= {e.data["message"]["content"] for e in log.of("message.created")}
            )
        # Every worker logs as the parent does (JSON lines): each socket's end is logged by
        # the worker that served it.
        sessions = len(logs)
        for log in logs:
            await log.close()
        logs.clear()

        def closed_lines() -> list[dict[str, object]]:
            entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
            return [entry for entry in entries if entry["message"] == "gateway session closed"]

        lines = await eventually(
            lambda: asyncio.sleep(0, closed_lines()), lambda lines: len(lines) >= sessions,
            timeout=10, what="a session line from each socket's worker",
        )
        assert len({line["pid"] for line in lines}) == 2  # both workers, each its own process
        assert "connection open" not in server.log()
    finally:
        for log in logs:
            await log.close()
        for person in people:
            await person.aclose()
        stop(server)


async def test_workers_without_redis_warn_at_start(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    env = server_env(tmp_path, database, workers=2)
    env["PARLEY_REDIS_URL"] = ""
    server = await asyncio.to_thread(ServerProcess(free_port(), env, tmp_path).start)
    try:
        assert WARNING in server.log()
    finally:
        stop(server)


def stop(server: ServerProcess) -> None:
    """SIGTERM: uvicorn's supervisor stops its workers, then exits (never SIGKILL here:
    the workers would outlive it)."""
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=20)
    assert code in (0, -signal.SIGTERM), server.log()[-3000:]
    assert "Stopping parent process" in server.log()
